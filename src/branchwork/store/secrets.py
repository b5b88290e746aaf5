"""Project secrets: kept in one file per project, mode 0600, in the data directory.

Secrets never go into the database, so a database can be shared or backed up without them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class SecretStore:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def _file(self, project_id: str) -> Path:
        return self._dir / f"{project_id}.json"

    def load(self, project_id: str) -> dict[str, str]:
        path = self._file(project_id)
        if not path.exists():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()}

    def stamp(self, project_id: str) -> tuple[int, int, int]:
        """Changes whenever the project's secrets file does (zeros when there is none)."""
        try:  # on every append: a plain string path (pathlib would add ~3 µs)
            stat = os.stat(f"{self._dir}{os.sep}{project_id}.json")
        except FileNotFoundError:
            return (0, 0, 0)
        return (stat.st_mtime_ns, stat.st_ino, stat.st_size)

    def set(self, project_id: str, name: str, value: str) -> None:
        values = self.load(project_id)
        values[name] = value
        self._write(project_id, values)

    def unset(self, project_id: str, name: str) -> bool:
        values = self.load(project_id)
        found = values.pop(name, None) is not None
        if found:
            self._write(project_id, values)
        return found

    def drop(self, project_id: str) -> None:
        self._file(project_id).unlink(missing_ok=True)

    def _write(self, project_id: str, values: dict[str, str]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".secrets-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(values, handle)
            os.replace(tmp, self._file(project_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
