"""Which runner runs a session's commands, and why: the sandbox backend, decided once.

`auto` (the default the service should use) confines commands with bubblewrap wherever it
works, probed once and cached (`probe.py`); where it does not, commands run unconfined on the
local runner, a warning is logged once per process, and `RunnerChoice.reason` says why, for
`branchwork doctor` and the session's records. `bubblewrap` insists (an error with the remedy
where it cannot work); `local` never confines.

A project that turns the network off needs bubblewrap: no runner quietly ignores that. The local
runner with the network off is an error that says what to change, under `auto` as well.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from branchwork.domain.errors import InvalidInput, SandboxError
from branchwork.sandbox.limits import Limits
from branchwork.sandbox.probe import probe_bubblewrap
from branchwork.sandbox.runner import BubblewrapRunner, LocalRunner, Runner

Backend = Literal["auto", "bubblewrap", "local"]

_log = logging.getLogger(__name__)
_warned: set[str] = set()


@dataclass(frozen=True)
class RunnerChoice:
    """What runs the commands (`backend`), whether that confines them, and why (one sentence)."""

    backend: Literal["bubblewrap", "local"]
    confined: bool
    reason: str


def choose_runner(
    backend: Backend,
    *,
    network: bool,
    worktree: Path,
    git_dirs: Sequence[Path] = (),
    hide: Sequence[Path] = (),
    limits: Limits | None = None,
    output_dir: Path | None = None,
    probe_cache: Path | None = None,
    bwrap: str | None = None,
) -> tuple[Runner, RunnerChoice]:
    """The runner for one worktree's commands, and the choice it embodies.

    auto: bubblewrap when it works here, else local (choice.reason says why). bubblewrap:
    bubblewrap, or `SandboxError` with the remedy. local: local. `network=False` needs
    bubblewrap. `worktree` is the only writable place (besides a private /tmp); `git_dirs` (the
    worktree's git dir and the repository's common one) are readable, never writable; `hide`
    (the data directory) is invisible; `output_dir` holds the output files (see `outputs.py`);
    `probe_cache` is the JSON file the probe's answer is kept in; `bwrap` the binary to use
    (default: the one on PATH).
    """
    choice = runner_choice(backend, network=network, probe_cache=probe_cache, bwrap=bwrap)
    if choice.backend == "local":
        return LocalRunner(limits=limits, output_dir=output_dir), choice
    runner = BubblewrapRunner(
        network=network,
        worktree=worktree,
        git_dirs=git_dirs,
        hide=hide,
        limits=limits,
        output_dir=output_dir,
        bwrap=bwrap,
    )
    return runner, choice


def runner_choice(
    backend: Backend,
    *,
    network: bool = True,
    probe_cache: Path | None = None,
    bwrap: str | None = None,
    refresh: bool = False,
) -> RunnerChoice:
    """The choice `choose_runner` makes, without building a runner (for `doctor`; `refresh`
    probes bubblewrap again instead of trusting the cached answer)."""
    if backend not in get_args(Backend):
        raise InvalidInput(
            f"Unknown sandbox backend {backend!r}; use one of `auto`, `bubblewrap`, `local`."
        )
    if backend == "local":
        if not network:
            raise SandboxError(
                "The local runner cannot turn the network off; turn the project's network on, "
                "or set the sandbox backend to `auto` or `bubblewrap` where bubblewrap works."
            )
        return RunnerChoice(
            "local", False, "the sandbox backend is `local`: commands run unconfined"
        )
    probe = probe_bubblewrap(network=network, bwrap=bwrap, cache=probe_cache, refresh=refresh)
    if probe.works:
        return RunnerChoice("bubblewrap", True, f"bubblewrap works here ({probe.describe()})")
    if backend == "bubblewrap":
        raise SandboxError(
            f"The bubblewrap sandbox does not work here: {probe.problem}; make it work, "
            "or set the sandbox backend to `auto` or `local`."
        )
    return _fall_back(probe.problem, network=network)


def make_runner(
    backend: Backend,
    *,
    network: bool = True,
    hide: Sequence[Path] = (),
    output_dir: Path | None = None,
) -> Runner:
    """The older entry point: a runner whose sandbox makes each command's `cwd` writable and
    binds no git dir. Prefer `choose_runner`."""
    choice = runner_choice(backend, network=network)
    if choice.backend == "local":
        return LocalRunner(output_dir=output_dir)
    return BubblewrapRunner(network=network, hide=hide, output_dir=output_dir)


def _fall_back(problem: str, *, network: bool) -> RunnerChoice:
    if not network:
        raise SandboxError(
            f"The project turns the network off, which needs bubblewrap, but it does not work "
            f"here: {problem}; make bubblewrap work, or turn the project's network on."
        )
    reason = f"bubblewrap does not work here: {problem}; commands run unconfined"
    if reason not in _warned:
        _warned.add(reason)
        _log.warning("Commands are not sandboxed: %s.", reason)
    return RunnerChoice("local", False, reason)
