"""Time per agent step spent outside the model and the tools, at 10 and 1,000 events of history.

Run by hand: `.venv/bin/python bench/agent_overhead.py [RUNS]` (default 5 turns per history,
the median of each figure is printed; pools off, so that no refill runs beside the turn).
The scripted model answers instantly; the model's and the tools' own time is measured by
wrappers (composition, nothing patched) and subtracted. The baseline, measured in the same
run, is one durable event append (`Store.append` of one event), the least a step must do.
Goal: < 5 ms per step at 1,000 events.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _repos import git_repo  # bench/_repos.py

from branchwork import Session, Workspace
from branchwork.agent import FixedApprover, Limits, TurnSettings, run_turn
from branchwork.domain.events import AgentMessage, ToolCall, ToolResult, UserMessage
from branchwork.domain.messages import ModelRequest, StreamItem
from branchwork.providers import ScriptedModel, ScriptedReply
from branchwork.service.agent_port import ServiceSessionPort
from branchwork.service.scope import open_scope
from branchwork.store import Store

STEPS = 40
TOOL_METHODS = ("read_file", "list_files", "write_file", "edit_file", "run_command", "search")


class TimedModel:
    def __init__(self, inner: ScriptedModel) -> None:
        self.inner = inner
        self.seconds = 0.0

    @property
    def name(self) -> str:
        return self.inner.name

    def stream(
        self, request: ModelRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[StreamItem]:
        start = time.perf_counter()
        items = list(self.inner.stream(request, cancel=cancel))
        self.seconds += time.perf_counter() - start
        yield from items


class TimedPort:
    """Forwards to the real port; the time of the tool-facing methods is summed."""

    def __init__(self, inner: ServiceSessionPort) -> None:
        self._inner = inner
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in TOOL_METHODS:
            return attr
        return self._timed(attr)

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return call


def _seed(store: Store, session: Session, events: int) -> None:
    output = "x" * 2000
    n = 0
    while store.last_seq(session.id) < events:
        n += 1
        call = ToolCall(call_id=f"s{n}", name="read_file", arguments={"path": "app.py"})
        store.append(
            session.id,
            [
                (UserMessage(text=f"question {n}"), "user"),
                (call, "agent"),
                (ToolResult(call_id=f"s{n}", name="read_file", output=output), "agent"),
                (AgentMessage(text=f"answer {n}"), "agent"),
            ],
        )


def _measure(history: int, base: Path) -> dict[str, float]:
    with Workspace(home=base / "home") as ws:
        app = {"app.py": "def main():\n    return 42\n" * 20}
        project = ws.add_project(git_repo(base / "repo", app))
        session = ws.new_session(project)
        store = Store.open(ws.settings.resolved_database_url)
        _seed(store, session, history)
        model = TimedModel(
            ScriptedModel(
                [
                    ScriptedReply.call("read_file", path="app.py", start_line=n + 1)
                    for n in range(STEPS)
                ]
                + ["done"]
            )
        )
        # the port a turn gets, over one scope (the service's own internals: a bench may)
        port = TimedPort(ServiceSessionPort(open_scope(ws._services, session)))
        start = time.perf_counter()
        result = run_turn(
            port,
            model,
            "go",
            settings=TurnSettings(limits=Limits(max_steps=STEPS + 1)),
            approver=FixedApprover(True),
        )
        total = time.perf_counter() - start
        assert result.status == "completed", result
        overhead = total - model.seconds - port.seconds
        return {
            "steps": result.steps,
            "overhead_ms_per_step": 1000 * overhead / result.steps,
            "append_ms": _append_baseline(store, session),
        }


def _append_baseline(store: Store, session: Session) -> float:
    samples = []
    for i in range(200):
        start = time.perf_counter()
        store.append(session.id, [(AgentMessage(text=f"baseline {i}"), "agent")])
        samples.append(time.perf_counter() - start)
    store.close()
    return 1000 * statistics.median(samples)


def _median_of(history: int, base: Path, runs: int) -> dict[str, float]:
    """Each figure's median over `runs` turns, each in a fresh data dir and session."""
    rows = [_measure(history, base / f"h{history}-{run}") for run in range(runs)]
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def main() -> int:
    # No pool: its refiller would check out a worktree in the background while the turn runs
    # (a one-off job after a session starts, not part of any step).
    os.environ["BRANCHWORK_POOL"] = "false"
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(n, _median_of(n, Path(tmp), runs)) for n in (10, 1000)]
    print(f"median of {runs} turns of {STEPS} steps each")
    print(
        f"{'history':>8} {'steps':>6} {'overhead/step':>14} {'append (baseline)':>18} {'ratio':>7}"
    )
    for n, row in rows:
        ratio = row["overhead_ms_per_step"] / row["append_ms"]
        print(
            f"{n:>8} {row['steps']:>6.0f} {row['overhead_ms_per_step']:>11.2f} ms "
            f"{row['append_ms']:>15.2f} ms {ratio:>6.1f}x"
        )
    at_1000 = rows[-1][1]["overhead_ms_per_step"]
    print(f"goal: < 5 ms per step at 1,000 events -> {'met' if at_1000 < 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
