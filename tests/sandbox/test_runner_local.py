"""The local runner with real processes: streaming, exit codes, timeouts, cleanup, secrets."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from branchwork.domain.errors import InvalidInput, SandboxError
from branchwork.sandbox import CommandSpec, LocalRunner, Redactor, Runner, make_runner

from .conftest import RunFn
from .procs import group_gone, is_running

SECRET = "hunter2-very-secret"


def first_line_int(text: str) -> int:
    return int(text.splitlines()[0])


def test_output_streams_in_order_while_the_command_runs(run_local: RunFn) -> None:
    arrivals: list[tuple[float, str]] = []
    result = run_local(
        "echo one; sleep 0.4; echo two",
        on_output=lambda text: arrivals.append((time.monotonic(), text)),
    )
    finished = time.monotonic()
    assert "".join(text for _, text in arrivals) == "one\ntwo\n"
    assert arrivals[0][1] == "one\n"
    assert finished - arrivals[0][0] > 0.3  # "one" arrived long before the end
    assert result.status == "ok"


def test_exit_zero_is_ok_and_nonzero_is_failed_with_its_code(run_local: RunFn) -> None:
    assert (run_local("exit 0").status, run_local("exit 0").exit_code) == ("ok", 0)
    failed = run_local("echo bad; exit 7")
    assert (failed.status, failed.exit_code, failed.head) == ("failed", 7, "bad\n")
    assert run_local(argv=["false"]).status == "failed"


def test_argv_is_passed_without_a_shell(run_local: RunFn) -> None:
    result = run_local(argv=["printf", "%s|", "a b", "$HOME", "*"])
    assert result.head == "a b|$HOME|*|"


def test_stderr_is_merged_into_the_output(run_local: RunFn) -> None:
    assert run_local("echo out; echo err >&2").head == "out\nerr\n"


def test_stdin_is_empty(run_local: RunFn) -> None:
    result = run_local("cat; echo end", timeout_s=5)
    assert (result.status, result.head) == ("ok", "end\n")


def test_command_runs_in_cwd_with_exactly_the_given_environment(
    run_local: RunFn, worktree: Path
) -> None:
    env = {"PATH": os.defpath, "ONLY_THIS": "yes"}
    result = run_local("pwd; env | sort", env=env)
    lines = result.head.splitlines()
    assert lines[0] == str(worktree)
    assert "ONLY_THIS=yes" in lines
    assert not any(line.startswith("HOME=") for line in lines)


def test_missing_executable_is_an_error_result_not_an_exception(run_local: RunFn) -> None:
    result = run_local(argv=["no-such-program-xyz", "arg"])
    assert (result.status, result.exit_code) == ("error", None)
    assert "Command not found: `no-such-program-xyz`" in result.error
    assert result.error.endswith("then run it again.")
    assert result.output_path.read_text() == ""


def test_missing_working_directory_is_an_error_result(run_local: RunFn, tmp_path: Path) -> None:
    result = run_local("echo hi", cwd=tmp_path / "gone")
    assert result.status == "error"
    assert "restore the session's worktree" in result.error


def test_missing_program_in_a_shell_command_is_the_shells_failure(run_local: RunFn) -> None:
    result = run_local("no-such-program-xyz")
    assert (result.status, result.exit_code) == ("failed", 127)
    assert "not found" in result.head


def test_core_dumps_are_disabled_in_the_child(run_local: RunFn) -> None:
    assert run_local("ulimit -c; ulimit -H -c").head == "0\n0\n"


def test_timeout_stops_the_command_and_leaves_no_process(run_local: RunFn) -> None:
    started = time.monotonic()
    result = run_local("echo $$; sleep 30", timeout_s=1)
    assert result.status == "timeout"
    assert 1.0 <= time.monotonic() - started < 3.0
    assert result.exit_code == -signal.SIGTERM
    pgid = first_line_int(result.head)
    assert group_gone(pgid)


def test_command_ignoring_sigterm_is_killed_a_second_later(run_local: RunFn) -> None:
    started = time.monotonic()
    result = run_local("trap '' TERM; echo $$; sleep 30", timeout_s=0.5)
    assert result.status == "timeout"
    assert result.exit_code == -signal.SIGKILL
    assert 1.4 <= time.monotonic() - started < 3.5
    assert group_gone(first_line_int(result.head))


def test_background_child_that_outlives_the_command_is_stopped(run_local: RunFn) -> None:
    started = time.monotonic()
    result = run_local("sleep 30 & echo $!; echo done", timeout_s=20)
    assert (result.status, result.head.splitlines()[1]) == ("ok", "done")
    assert time.monotonic() - started < 2.0  # the child held the pipe; we did not wait for it
    assert not is_running(first_line_int(result.head))


def test_process_that_leaves_the_group_does_not_hang_the_runner(run_local: RunFn) -> None:
    started = time.monotonic()
    result = run_local("setsid sleep 30 & echo $!", timeout_s=20)
    escaped = first_line_int(result.head)
    try:
        assert result.status == "ok"
        assert time.monotonic() - started < 2.5
    finally:
        os.kill(escaped, signal.SIGKILL)


def test_cancel_from_another_thread_stops_the_command(run_local: RunFn) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    result = run_local("echo $$; sleep 30", cancel=cancel, timeout_s=20)
    timer.join()
    assert result.status == "cancelled"
    assert time.monotonic() - started < 2.0
    assert group_gone(first_line_int(result.head))


def test_output_over_the_cap_keeps_head_tail_and_the_full_file(run_local: RunFn) -> None:
    result = run_local("seq 1 20000", output_cap=1000)
    full = "".join(f"{n}\n" for n in range(1, 20001))
    assert result.truncated
    assert result.output_bytes == len(full)
    assert result.output_path.read_text(encoding="utf-8") == full
    assert full.startswith(result.head) and result.head.startswith("1\n2\n")
    assert full.endswith(result.tail) and result.tail.endswith("19999\n20000\n")
    assert len(result.head) == 500 and len(result.tail) == 500


def test_output_within_the_cap_is_all_in_head(run_local: RunFn) -> None:
    result = run_local("printf 0123456789", output_cap=10)
    assert (result.truncated, result.head, result.tail) == (False, "0123456789", "")


def test_cut_never_splits_a_multibyte_character(run_local: RunFn) -> None:
    result = run_local("printf 'ééééééééé'", output_cap=7)  # 18 bytes
    assert result.truncated
    assert result.head == "é"  # 3 bytes allowed: one whole é
    assert result.tail == "éé"  # 4 bytes allowed: two whole é


def test_invalid_utf8_is_replaced_and_split_characters_are_joined(run_local: RunFn) -> None:
    result = run_local(r"printf '\377ok '; printf '\303'; sleep 0.2; printf '\251\n'")
    assert result.head == "\ufffdok é\n"


def test_printed_secret_never_reaches_chunks_head_tail_or_file(
    run_local: RunFn, command_env: dict[str, str]
) -> None:
    chunks: list[str] = []
    script = (
        'echo "token=$TOKEN"; printf "%s" "${TOKEN%????????}"; sleep 0.2; '
        'printf "%s\\n" "${TOKEN#${TOKEN%????????}}"; seq 1 3000; echo "$TOKEN"'
    )
    result = run_local(
        script,
        env={**command_env, "TOKEN": SECRET},
        redactor=Redactor({"TOKEN": SECRET}),
        on_output=chunks.append,
        output_cap=200,
    )
    recorded = result.output_path.read_text(encoding="utf-8")
    assert recorded.startswith("token=[secret:TOKEN]\n[secret:TOKEN]\n1\n")
    assert recorded.endswith("3000\n[secret:TOKEN]\n")
    for text in (*chunks, "".join(chunks), result.head, result.tail, recorded):
        assert SECRET not in text


def test_secret_in_an_error_message_is_redacted(run_local: RunFn) -> None:
    result = run_local(argv=[SECRET], redactor=Redactor({"TOKEN": SECRET}))
    assert result.status == "error"
    assert SECRET not in result.error and "[secret:TOKEN]" in result.error


def test_exception_in_the_output_callback_stops_the_command(
    worktree: Path, command_env: dict[str, str]
) -> None:
    seen: list[str] = []

    def explode(text: str) -> None:
        seen.append(text)
        raise RuntimeError("consumer failed")

    spec = CommandSpec(shell="echo $$; sleep 30", cwd=worktree, env=command_env, timeout_s=20)
    with pytest.raises(RuntimeError, match="consumer failed"):
        LocalRunner(output_dir=worktree).run(spec, redactor=Redactor({}), on_output=explode)
    assert group_gone(first_line_int(seen[0]))
    assert list(worktree.iterdir()) == []  # the output file is gone too


def test_output_file_goes_to_the_configured_directory(
    worktree: Path, tmp_path: Path, command_env: dict[str, str]
) -> None:
    out_dir = tmp_path / "outputs"
    out_dir.mkdir()
    runner: Runner = LocalRunner(output_dir=out_dir)
    spec = CommandSpec(argv=["echo", "hi"], cwd=worktree, env=command_env, timeout_s=5)
    result = runner.run(spec, redactor=Redactor({}))
    assert result.output_path.parent == out_dir
    assert result.output_path.read_text() == "hi\n"
    assert result.output_path.stat().st_mode & 0o777 == 0o600


def test_unwritable_output_directory_raises_sandbox_error(
    worktree: Path, tmp_path: Path, command_env: dict[str, str]
) -> None:
    spec = CommandSpec(argv=["true"], cwd=worktree, env=command_env, timeout_s=5)
    with pytest.raises(SandboxError, match="fix that directory"):
        LocalRunner(output_dir=tmp_path / "missing").run(spec, redactor=Redactor({}))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"shell": "echo", "argv": ["echo"]},
        {"shell": "  "},
        {"argv": []},
        {"argv": ["echo"], "timeout_s": 0},
        {"argv": ["echo"], "output_cap": -1},
    ],
)
def test_invalid_command_spec_is_refused(fields: dict[str, object], worktree: Path) -> None:
    with pytest.raises(InvalidInput):
        CommandSpec(cwd=worktree, env={}, **fields)  # type: ignore[arg-type]


def test_command_spec_is_immutable_and_copies_its_inputs(worktree: Path) -> None:
    argv, env = ["echo", "hi"], {"A": "1"}
    spec = CommandSpec(argv=argv, cwd=worktree, env=env)
    argv.append("changed")
    env["A"] = "2"
    assert spec.command() == ["echo", "hi"]
    assert spec.env["A"] == "1"
    assert spec.display == "echo hi"


def test_make_runner_local_refuses_to_promise_no_network() -> None:
    assert isinstance(make_runner("local"), LocalRunner)
    with pytest.raises(SandboxError, match="bubblewrap"):
        make_runner("local", network=False)


def test_argv_program_with_a_slash_is_found_relative_to_cwd(
    run_local: RunFn, worktree: Path
) -> None:
    script = worktree / "tool.sh"
    script.write_text("#!/bin/sh\necho tool ran in $(pwd)\n")
    script.chmod(0o755)
    assert run_local(argv=["./tool.sh"]).head == f"tool ran in {worktree}\n"
    script.chmod(0o644)
    assert run_local(argv=["./tool.sh"]).status == "error"
