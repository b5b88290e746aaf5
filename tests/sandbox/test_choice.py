"""Choosing the runner: bubblewrap where it works, probed once and cached across processes;
the local runner otherwise, with the reason; errors that say what to change.

A broken machine is simulated without touching this one: `bwrap=` names a real file that is
not bubblewrap (a missing path, or a script that fails as bwrap does without user namespaces),
and a counting script that runs the real bwrap shows when a probe really ran."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from branchwork.domain.errors import InvalidInput, SandboxError
from branchwork.sandbox import (
    BubblewrapRunner,
    LocalRunner,
    bubblewrap_available,
    bubblewrap_problem,
    choose_runner,
    probe_bubblewrap,
    runner_choice,
)

from .conftest import running

REAL_BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(
    not bubblewrap_available(network=False),
    reason=f"bubblewrap cannot run here: {bubblewrap_problem(network=False)}",
)
NO_USERNS = "bwrap: setting up uid map: Permission denied"


def script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def broken_bwrap(tmp_path: Path) -> str:
    """A `bwrap` that fails as bubblewrap does where user namespaces are forbidden."""
    return script(
        tmp_path / "bwrap", f'echo run >> {tmp_path}/runs.log; echo "{NO_USERNS}" >&2; exit 1'
    )


@pytest.fixture
def counting_bwrap(tmp_path: Path) -> str:
    """The real bwrap behind a script that counts its runs in `runs.log` next to it."""
    assert REAL_BWRAP is not None
    return script(tmp_path / "bwrap", f'echo run >> {tmp_path}/runs.log\nexec {REAL_BWRAP} "$@"')


def runs(counting_bwrap: str) -> int:
    log = Path(counting_bwrap).parent / "runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def probe_in_another_process(bwrap: str, cache: Path, *, network: bool = False) -> bool:
    code = (
        "import sys; from pathlib import Path; from branchwork.sandbox import probe_bubblewrap; "
        "print(probe_bubblewrap(network=sys.argv[3] == 'on', bwrap=sys.argv[1], "
        "cache=Path(sys.argv[2])).works)"
    )
    argv = [sys.executable, "-c", code, bwrap, str(cache), "on" if network else "off"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return done.stdout.strip() == "True"


@needs_bwrap
def test_auto_chooses_bubblewrap_where_it_works(tmp_path: Path, worktree: Path) -> None:
    cache = tmp_path / "cache" / "bwrap-probe.json"
    runner, choice = choose_runner("auto", network=False, worktree=worktree, probe_cache=cache)
    assert isinstance(runner, BubblewrapRunner)
    assert (choice.backend, choice.confined) == ("bubblewrap", True)
    assert choice.reason.startswith("bubblewrap works here (probed ")
    assert choice.reason.endswith(f"UTC, cached in {cache})")


@needs_bwrap
def test_probe_answer_is_cached_and_reused_by_later_processes(
    tmp_path: Path, counting_bwrap: str
) -> None:
    cache = tmp_path / "probe.json"
    assert probe_bubblewrap(network=False, bwrap=counting_bwrap, cache=cache).works
    assert runs(counting_bwrap) == 1
    saved = json.loads(cache.read_text())
    assert saved["key"]["bwrap"] == os.path.realpath(counting_bwrap)
    assert saved["key"]["kernel"] == os.uname().release
    assert saved["probes"]["network-off"]["works"] is True
    written = cache.stat().st_mtime_ns

    assert probe_bubblewrap(network=False, bwrap=counting_bwrap, cache=cache).works
    assert probe_in_another_process(counting_bwrap, cache)
    assert runs(counting_bwrap) == 1  # neither this process again nor the other one probed
    assert cache.stat().st_mtime_ns == written


@needs_bwrap
def test_a_cache_that_cannot_be_written_is_said_nowhere_but_the_debug_log(
    tmp_path: Path, counting_bwrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only data directory: a command's stderr is for its own outcome (before, a
    warning line came before the command's error)."""
    blocked = tmp_path / "a-file"
    blocked.write_text("where the cache's directory should be\n")
    cache = blocked / "probe.json"
    with caplog.at_level(logging.DEBUG, logger="branchwork.sandbox"):
        probe = probe_bubblewrap(network=False, bwrap=counting_bwrap, cache=cache)
    assert probe.works and probe.cache is None and "cached in" not in probe.describe()
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert f"Could not cache the bubblewrap probe in {cache}" in caplog.text


@needs_bwrap
def test_changed_bwrap_binary_is_probed_again(tmp_path: Path, counting_bwrap: str) -> None:
    cache = tmp_path / "probe.json"
    probe_bubblewrap(network=False, bwrap=counting_bwrap, cache=cache)
    old_size = json.loads(cache.read_text())["key"]["size"]
    Path(counting_bwrap).write_text(Path(counting_bwrap).read_text() + "# a new version\n")
    assert probe_bubblewrap(network=False, bwrap=counting_bwrap, cache=cache).works
    assert runs(counting_bwrap) == 2
    assert json.loads(cache.read_text())["key"]["size"] != old_size


@needs_bwrap
def test_changed_kernel_is_probed_again(tmp_path: Path, counting_bwrap: str) -> None:
    cache = tmp_path / "probe.json"
    probe_bubblewrap(network=False, bwrap=counting_bwrap, cache=cache)
    saved = json.loads(cache.read_text())
    saved["key"]["kernel"] = "0.0.1-an-older-kernel"
    cache.write_text(json.dumps(saved))
    assert probe_in_another_process(counting_bwrap, cache)
    assert runs(counting_bwrap) == 2
    assert json.loads(cache.read_text())["key"]["kernel"] == os.uname().release


@needs_bwrap
def test_network_on_and_off_are_probed_separately_into_one_file(
    tmp_path: Path, counting_bwrap: str
) -> None:
    cache = tmp_path / "probe.json"
    probe_bubblewrap(network=False, bwrap=counting_bwrap, cache=cache)
    probe_bubblewrap(network=True, bwrap=counting_bwrap, cache=cache)
    assert runs(counting_bwrap) == 2
    assert set(json.loads(cache.read_text())["probes"]) == {"network-on", "network-off"}


def test_auto_falls_back_to_local_when_bwrap_is_missing(
    tmp_path: Path, worktree: Path, command_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "no-such-bwrap")
    with caplog.at_level(logging.WARNING, logger="branchwork.sandbox"):
        runner, choice = choose_runner("auto", network=True, worktree=worktree, bwrap=missing)
    assert isinstance(runner, LocalRunner)
    assert (choice.backend, choice.confined) == ("local", False)
    assert choice.reason == (
        f"bubblewrap does not work here: `{missing}` does not exist "
        "(install the bubblewrap package); commands run unconfined"
    )
    assert "Commands are not sandboxed" in caplog.text
    with running(runner, worktree, command_env) as run:
        assert run("echo still runs").head == "still runs\n"


def test_auto_falls_back_to_local_when_bwrap_fails_here(
    tmp_path: Path, worktree: Path, broken_bwrap: str
) -> None:
    cache = tmp_path / "probe.json"
    runner, choice = choose_runner(
        "auto", network=True, worktree=worktree, bwrap=broken_bwrap, probe_cache=cache
    )
    assert isinstance(runner, LocalRunner) and not choice.confined
    assert f"`{broken_bwrap}` failed with exit code 1: {NO_USERNS}" in choice.reason
    assert "user namespaces may be disabled here" in choice.reason
    assert choice.reason.endswith("; commands run unconfined")
    assert json.loads(cache.read_text())["probes"]["network-on"]["works"] is False


def test_a_negative_answer_older_than_an_hour_is_probed_again(
    tmp_path: Path, broken_bwrap: str
) -> None:
    cache = tmp_path / "probe.json"
    probe_bubblewrap(network=True, bwrap=broken_bwrap, cache=cache)
    assert not probe_in_another_process(broken_bwrap, cache, network=True)
    assert runs(broken_bwrap) == 1  # a fresh "no" is trusted too
    saved = json.loads(cache.read_text())
    then = datetime.now(UTC) - timedelta(minutes=61)
    saved["probes"]["network-on"]["probed_at"] = then.isoformat()
    cache.write_text(json.dumps(saved))
    assert not probe_in_another_process(broken_bwrap, cache, network=True)
    assert runs(broken_bwrap) == 2


@needs_bwrap
def test_refresh_probes_again_whatever_is_cached(tmp_path: Path, counting_bwrap: str) -> None:
    cache = tmp_path / "probe.json"
    first = runner_choice("auto", network=False, bwrap=counting_bwrap, probe_cache=cache)
    again = runner_choice(
        "auto", network=False, bwrap=counting_bwrap, probe_cache=cache, refresh=True
    )
    assert first.confined and again.confined
    assert runs(counting_bwrap) == 2


def test_bubblewrap_backend_refuses_to_run_unconfined(worktree: Path, broken_bwrap: str) -> None:
    with pytest.raises(SandboxError, match=r"set the sandbox backend to `auto` or `local`\.$"):
        choose_runner("bubblewrap", network=True, worktree=worktree, bwrap=broken_bwrap)


def test_network_off_is_never_quietly_dropped(worktree: Path, broken_bwrap: str) -> None:
    with pytest.raises(SandboxError, match=r"turn the project's network on\.$"):
        choose_runner("auto", network=False, worktree=worktree, bwrap=broken_bwrap)
    with pytest.raises(SandboxError, match="The local runner cannot turn the network off"):
        choose_runner("local", network=False, worktree=worktree)


def test_local_backend_is_local_because_it_was_asked_for(worktree: Path) -> None:
    runner, choice = choose_runner("local", network=True, worktree=worktree)
    assert isinstance(runner, LocalRunner)
    assert choice.reason == "the sandbox backend is `local`: commands run unconfined"
    assert runner_choice("local") == choice


def test_unknown_backend_is_refused(worktree: Path) -> None:
    with pytest.raises(InvalidInput, match="use one of `auto`, `bubblewrap`, `local`"):
        choose_runner("docker", network=True, worktree=worktree)  # type: ignore[arg-type]


def test_unreadable_cache_file_only_costs_a_new_probe(tmp_path: Path, broken_bwrap: str) -> None:
    cache = tmp_path / "probe.json"
    cache.write_text("{not json")
    assert not probe_bubblewrap(network=True, bwrap=broken_bwrap, cache=cache).works
    assert json.loads(cache.read_text())["format"] == 1
