"""One process of the concurrency test, run as a script:

    python _hammer.py HOME GATE NAME SECONDS REPORT SESSION

Through the Python API (`Workspace`), in a loop until SECONDS have passed: write a new file,
run a command that writes another, edit the first, read it back. Every operation and what the
process was told (success, or the error's type and text) goes into the JSON report. The
process says it is ready by creating GATE/NAME, and starts when GATE/go exists, so that all
processes hammer at the same time.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 120.0


class Hammer:
    def __init__(self, ws: Any, session: str, name: str) -> None:
        self.ws = ws
        self.session = session
        self.name = name
        self.ops: list[dict[str, Any]] = []

    def attempt(self, op: str, path: str, call: Callable[[], Any], **facts: Any) -> Any:
        from branchwork import BranchworkError

        entry: dict[str, Any] = {"op": op, "session": self.session, "path": path, **facts}
        self.ops.append(entry)
        try:
            result = call()
        except BranchworkError as exc:
            entry.update(ok=False, error=f"{type(exc).__name__}: {exc}", unexpected=False)
            return None
        except Exception as exc:
            entry.update(
                ok=False,
                error=f"{type(exc).__name__}: {exc}",
                unexpected=True,
                traceback=traceback.format_exc(),
            )
            return None
        entry["ok"] = True
        return result

    def round(self, j: int) -> None:
        tag = f"{self.name}-{j}"
        path, written, edited = f"w{tag}.txt", f"write {tag}\n", f"edited {tag}\n"
        wrote = self.attempt(
            "write", path, lambda: self.ws.write_file(self.session, path, written), content=written
        )
        self._run(tag)
        if wrote is None:
            return
        did_edit = self.attempt(
            "edit",
            path,
            lambda: self.ws.edit_file(self.session, path, f"write {tag}", f"edited {tag}"),
            content=edited,
        )
        expected = written if did_edit is None else edited
        text = self.attempt("read", path, lambda: self.ws.read_file(self.session, path))
        if text is not None and text != expected:
            self.ops[-1].update(ok=False, error=f"read {text!r}, expected {expected!r}")

    def _run(self, tag: str) -> None:
        command = f"echo {tag} > r{tag}.txt"
        outcome = self.attempt(
            "run", f"r{tag}.txt", lambda: self.ws.run(self.session, command), command=command
        )
        if outcome is None:
            return
        finished = outcome.finished
        entry = self.ops[-1]
        entry.update(command_id=finished.command_id, status=finished.status, content=f"{tag}\n")
        if finished.status != "ok" or finished.exit_code != 0:
            entry.update(
                ok=False,
                error=f"command {finished.status}, exit code {finished.exit_code}: "
                f"{finished.output_head[-300:]}",
            )


def main(argv: list[str]) -> int:
    home, gate, name, seconds, report, session = argv
    from branchwork import Workspace

    ws = Workspace(home=home)
    hammer = Hammer(ws, session, name)
    (Path(gate) / name).touch()
    waited = time.monotonic() + READY_TIMEOUT_S
    while not (Path(gate) / "go").exists():
        if time.monotonic() > waited:
            raise SystemExit("never told to go")
        time.sleep(0.005)
    started = time.monotonic()
    deadline = started + float(seconds)
    j = 0
    while time.monotonic() < deadline:
        hammer.round(j)
        j += 1
    ended = time.monotonic()
    ws.close()
    Path(report).write_text(
        json.dumps({"name": name, "rounds": j, "seconds": ended - started, "ops": hammer.ops})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
