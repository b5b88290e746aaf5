"""What every use case shares, built once per `Workspace`: settings, the store, the secrets, the
recorder (the only way to append an event) and, opened on first use, the code index."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from branchwork.service.recorder import Recorder, Redactors
from branchwork.settings import Settings
from branchwork.store import SecretStore, Store

if TYPE_CHECKING:
    from branchwork.index import CodeIndex


@dataclass
class Services:
    settings: Settings
    store: Store
    secrets: SecretStore
    recorder: Recorder
    _index: CodeIndex | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, allow_empty: bool = False) -> Services:
        """`allow_empty`: a zero-length database file is initialised (for a rebuild) instead of
        refused."""
        settings.home.mkdir(parents=True, exist_ok=True)
        store = Store.open(settings.resolved_database_url, allow_empty=allow_empty)
        secrets = SecretStore(settings.home / "secrets")
        return cls(settings, store, secrets, Recorder(store, Redactors(secrets)))

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def lock_dir(self) -> Path:
        return self.home / "locks"

    def code_index(self) -> CodeIndex:
        """The code index of this data directory. Opened on first use: its modules (tree-sitter
        and the grammars) are loaded only by the commands that search or index."""
        if self._index is None:
            index = importlib.import_module("branchwork.index")
            self._index = index.CodeIndex(self.home / "index.sqlite")
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        self.store.close()
