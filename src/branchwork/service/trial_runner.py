"""The background worker of one trial: `python -m branchwork.service.trial_runner TRIAL_ID`,
with the settings (JSON) on standard input.

It waits for one of the project's turn slots (the trial is `queued` meanwhile; a trial stopped
while waiting never starts), then runs one agent turn on the task's objective in the trial's
session. The turn records everything, and its outcome becomes the trial's status
(`trials.after_turn`). Whatever goes wrong is the trial's status and detail, never lost.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from branchwork.domain.errors import BranchworkError
from branchwork.domain.events import utc_now
from branchwork.domain.models import Session
from branchwork.domain.tasks import Trial
from branchwork.sandbox.liveness import this_host
from branchwork.service import chat, resolve, slots, trials
from branchwork.service.base import Services
from branchwork.settings import Settings


def run_trial(services: Services, trial_id: str) -> Trial:
    """Wait for a slot, then run the trial's turn; returns the trial as it ended."""
    store = services.store.tasks
    trial = store.trial(trial_id)
    store.update_trial(trial.id, utc_now(), unless=trials.KEEP, pid=os.getpid(), host=this_host())
    task = store.task_by_id(trial.task_id)
    project = resolve.get_project(services, task.project_id)
    session = services.store.get_session(trial.session_id)
    directory = services.lock_dir / f"turns-{project.id}"

    def still_queued() -> bool:
        return store.trial(trial_id).status == "queued"

    def limit() -> int:
        return resolve.get_project(services, project.id).config.concurrent_turns

    with slots.turn_slot(directory, limit, keep_waiting=still_queued) as got:
        if got and still_queued():
            prompt = services.recorder.redactor(project.id).redact(trials.objective(task, trial))
            _run(services, session, prompt, trial)
    return store.trial(trial_id)


def _run(services: Services, session: Session, prompt: str, trial: Trial) -> None:
    """The turn; an error that stops it before it records its own end fails the trial."""
    try:
        chat.send_message(services, session, prompt, model=trial.model)
    except BranchworkError as exc:
        _fail(services, trial, str(exc))
    except Exception as exc:
        _fail(services, trial, f"internal error: {exc!r} (the trial's log has the traceback)")
        raise


def _fail(services: Services, trial: Trial, why: str) -> None:
    current = services.store.tasks.trial(trial.id)
    if current.status in trials.ACTIVE:
        trials.set_status(services, current, "failed", why.splitlines()[0][:500] if why else "")


def _stop(signum: int, frame: FrameType | None) -> None:
    del frame
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m branchwork.service.trial_runner TRIAL_ID < settings.json")
        return 2
    signal.signal(signal.SIGTERM, _stop)
    settings = Settings.model_validate_json(sys.stdin.read())
    services = Services.open(settings)
    try:
        trial = run_trial(services, argv[0])
    finally:
        services.close()
    print(f"trial {trial.number}: {trial.status} {trial.detail}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
