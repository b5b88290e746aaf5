"""`branchwork doctor`: what this installation runs with, and what is wrong with it.

Each check is one line: what was checked, whether it is fine, and the detail (the remedy when
it is not). Nothing is repaired: a broken database is reported (`doctor --rebuild` recovers
from a lost one, see `rebuild.py`); a missing one is created, as any command would.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass

from branchwork import gitops
from branchwork.domain.errors import BranchworkError
from branchwork.providers import resolve_model
from branchwork.sandbox import runner_choice
from branchwork.settings import Settings
from branchwork.store import Store


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def diagnose(settings: Settings, *, refresh: bool = False) -> list[Check]:
    """Every check, in the order a person reads them."""
    return [
        Check("python", True, sys.version.split()[0]),
        _git(),
        _data_dir(settings),
        _database(settings),
        _runner(settings, network=True, refresh=refresh),
        _runner(settings, network=False, refresh=refresh),
        _model(settings),
    ]


def _git() -> Check:
    if shutil.which("git") is None:
        return Check("git", False, "not installed; install git (apt-get install git)")
    return Check("git", True, gitops.run_git(["--version"], ".").strip())


def _data_dir(settings: Settings) -> Check:
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("data directory", False, f"{home}: {exc.strerror}; make it writable")
    return Check("data directory", True, str(home))


def _database(settings: Settings) -> Check:
    url = settings.public_dict()["database_url"]
    try:
        Store.open(settings.resolved_database_url).close()
    except BranchworkError as exc:
        return Check("database", False, exc.message)
    return Check("database", True, url)


def _runner(settings: Settings, *, network: bool, refresh: bool) -> Check:
    """The runner in force for a project with the deployment's sandbox setting."""
    cache = settings.home / "sandbox-probe.json"
    label = "commands" if network else "commands without network"
    try:
        choice = runner_choice(
            settings.sandbox, network=network, probe_cache=cache, refresh=refresh
        )
    except BranchworkError as exc:
        return Check(label, False, exc.message)
    return Check(label, choice.confined or network, f"{choice.backend}: {choice.reason}")


def _model(settings: Settings) -> Check:
    try:
        model = resolve_model(settings.model)
    except BranchworkError as exc:
        return Check("default model", False, exc.message)
    return Check("default model", True, model.name)
