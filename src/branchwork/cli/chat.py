"""`branchwork chat` and `branchwork ask`: talk to the session's agent."""

from __future__ import annotations

import queue
import shlex
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

import branchwork as bw
from branchwork.cli import render
from branchwork.cli._common import JsonOpt, ModelOpt, ModeOpt, ProjectOpt, TaskOpt, workspace

if TYPE_CHECKING:
    from branchwork import Answer, Event, Model, TurnHooks, TurnResult, Workspace

NewOpt = Annotated[bool, typer.Option("--new", help="Start a new session for this chat.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Approve every action asked about.")]
StepsOpt = Annotated[int | None, typer.Option(min=1, help="Most model calls in one turn.")]
# How `ask` exits, per turn outcome (`--json` prints the turn_finished event that says which).
STATUS_EXIT = {
    "completed": 0,
    "failed": 1,
    "interrupted": 1,
    "step_limit": 4,
    "stuck": 5,
    "budget": 6,
    "cancelled": 130,
}


@dataclass
class TurnDriver:
    """Runs a turn in a worker thread so that Ctrl-C (main thread) cancels it cleanly, and
    approvals are asked on the main thread."""

    ws: Workspace
    interactive: bool
    as_json: bool = False
    approve_all: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    _asks: queue.Queue[tuple[Any, queue.Queue[Answer]]] = field(default_factory=queue.Queue)
    _screen: render.LiveTurn = field(default_factory=render.LiveTurn)

    def run(
        self,
        session: str,
        text: str,
        model: str | Model | None,
        mode: str | None,
        max_steps: int | None = None,
    ) -> TurnResult:
        self.cancel = threading.Event()
        self._screen = render.LiveTurn()
        outcome: list[TurnResult | BaseException] = []
        done = threading.Event()
        worker = threading.Thread(
            target=self._work,
            args=(session, text, model, mode, max_steps, outcome, done),
            daemon=True,
        )
        worker.start()
        self._supervise(done)
        self._screen.close()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def _work(
        self,
        session: str,
        text: str,
        model: str | Model | None,
        mode: str | None,
        max_steps: int | None,
        outcome: list[TurnResult | BaseException],
        done: threading.Event,
    ) -> None:
        try:
            outcome.append(
                self.ws.send_message(
                    session,
                    text,
                    model=model,
                    mode=mode,
                    approver=self._approve,
                    hooks=self._hooks(),
                    cancel=self.cancel,
                    max_steps=max_steps,
                )
            )
        except BaseException as exc:
            outcome.append(exc)
        finally:
            done.set()

    def _supervise(self, done: threading.Event) -> None:
        # An Event, not Thread.join: a KeyboardInterrupt inside join() can leave the thread
        # looking finished while it still runs (CPython), which would lose the turn's result.
        while not done.is_set():
            try:
                self._answer_pending()
                self._screen.tick()
                done.wait(0.1)
            except KeyboardInterrupt:
                render.err_console.print("\n[yellow]cancelling the turn…[/]")
                self.cancel.set()

    def _answer_pending(self) -> None:
        try:
            request, reply = self._asks.get_nowait()
        except queue.Empty:
            return
        try:
            reply.put(self._prompt(request))
        except (KeyboardInterrupt, EOFError):
            reply.put(bw.Answer(False, "cancelled"))
            self.cancel.set()

    def _approve(self, request: Any) -> Answer:
        if self.approve_all:
            return bw.Answer(True, "approved in advance (--yes)", by="system")
        if not self.interactive:
            return bw.Answer(
                False,
                "no one can approve in a non-interactive run; rerun with "
                "--yes, or with --mode autopilot",
                by="system",
            )
        reply: queue.Queue[Answer] = queue.Queue()
        self._asks.put((request, reply))
        return reply.get()

    def _prompt(self, request: Any) -> Answer:
        self._screen.close()
        render.console.print(f"\n[bold yellow]approve?[/] {escape(request.summary)}")
        if request.action == "run_command":
            render.console.print(f"  [bold]$ {escape(request.detail)}[/]")
        else:
            render.print_diff(request.detail)
        answer = input("allow this? [y/N] ").strip().lower()
        return bw.Answer(answer in ("y", "yes"), "" if answer in ("y", "yes") else "denied")

    def _hooks(self) -> TurnHooks:
        if self.as_json:
            return bw.TurnHooks(on_event=_print_event_json)
        screen = self._screen
        return bw.TurnHooks(  # streamed text arrives redacted by the service
            on_event=screen.event, on_text=screen.text, on_output=screen.output, on_step=screen.step
        )


def _print_event_json(event: Event) -> None:
    render.print_json_lines([event.to_json_dict()])


def _finish_line(result: TurnResult) -> None:
    render.console.print(render.turn_summary(result))


def ask_cmd(
    args: Annotated[list[str], typer.Argument(help="[SESSION] MESSAGE")],
    model: ModelOpt = None,
    mode: ModeOpt = None,
    new: NewOpt = False,
    yes: YesOpt = False,
    project: ProjectOpt = None,
    max_steps: StepsOpt = None,
    task: TaskOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one agent turn non-interactively. Actions the mode would ask about are refused
    unless --yes. With --task, the turn runs in a new trial of that task (its own session).
    With --json, prints the turn's events as JSON lines. Exits 0 when the turn completed,
    1 failed, 4 step limit, 5 stuck, 6 budget reached, 130 cancelled."""
    if len(args) > 2 or not args:
        raise bw.InvalidInput(
            'give the message (and optionally a session first): ask [SESSION] "…"'
        )
    key, text = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    with workspace() as ws:
        if task is not None:
            key = _trial_session(ws, task, key, project, model, as_json=as_json)
        session = ws.chat_session(
            key, project=project, first_message=text, new=new, mode=mode, model=model
        )
        driver = TurnDriver(ws, interactive=False, as_json=as_json, approve_all=yes)
        result = driver.run(session.id, text, model, mode, max_steps)
    if not as_json:
        _finish_line(result)
    raise typer.Exit(STATUS_EXIT.get(result.status, 1))


def _trial_session(
    ws: Workspace,
    task: str,
    session: str | None,
    project: str | None,
    model: str | None,
    *,
    as_json: bool = False,
) -> str:
    """The session of a new trial of `task` (a session named too is refused)."""
    if session is not None:
        raise bw.InvalidInput("give a session or --task, not both: --task starts a new trial")
    trial = ws.start_task(task, project=project, model=model)
    if not as_json:
        render.console.print(f"[dim]task {escape(task)}: trial {trial.number}[/]")
    return trial.session_id


def chat_cmd(
    session: Annotated[
        str | None, typer.Argument(help="Session (default: current, or new).")
    ] = None,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    new: NewOpt = False,
    yes: YesOpt = False,
    project: ProjectOpt = None,
    task: TaskOpt = None,
) -> None:
    """Chat with the agent in a session: streamed answers, tool calls and command output as they
    happen. With --task, in a new trial of that task. Commands: /diff, /log, /revert
    CHECKPOINT, /model [SPEC], /mode [MODE], /compact (summarise the older exchanges now),
    /exit. Ctrl-C cancels the running turn."""
    with workspace() as ws:
        if task is not None:
            session = _trial_session(ws, task, session, project, model)
        checked_mode = ws.check_mode(mode) if mode else None
        checked_model = ws.check_model(model) if model else None
        state = _ChatState(ws, session, checked_model, checked_mode, new, project)
        driver = TurnDriver(ws, interactive=True, approve_all=yes)
        render.console.print("[dim]branchwork chat: /exit to leave, Ctrl-C to cancel a turn[/]")
        while (line := _read_line()) is not None:
            if not line.strip():
                continue
            if line.startswith("/"):
                if not state.command(line):
                    break
                continue
            state.turn(driver, line)


def _read_line() -> str | None:
    try:
        return input("\n> ")
    except (EOFError, KeyboardInterrupt):
        return None


@dataclass
class _ChatState:
    """A chat: its session (made by the first message when there is none), and one model kept
    across turns (`/model` changes it), so that a scripted model goes on with its replies."""

    ws: Workspace
    session: str | None
    model: str | None
    mode: str | None
    new: bool
    project: str | None
    _model: Model | None = None

    def turn(self, driver: TurnDriver, text: str) -> None:
        if self.session is None or self.new:
            created = self.ws.chat_session(
                self.session,
                project=self.project,
                first_message=text,
                new=self.new,
                model=self.model,
            )
            self.session, self.new = created.id, False
            render.console.print(f"[dim]session {created.short_id} ({escape(created.branch)})[/]")
        try:
            if self._model is None:
                self._model = self.ws.model(self.model, session=self.session)
            _finish_line(driver.run(self.session, text, self._model, self.mode))
        except bw.BranchworkError as exc:
            render.err_console.print(f"[red]error:[/] {escape(exc.message)}")

    def command(self, line: str) -> bool:
        name, *rest = shlex.split(line)
        try:
            return self._dispatch(name, rest)
        except bw.BranchworkError as exc:
            render.err_console.print(f"[red]error:[/] {escape(exc.message)}")
            return True

    def _dispatch(self, name: str, rest: list[str]) -> bool:
        if name in ("/exit", "/quit"):
            return False
        if name == "/diff":
            render.print_diff(self.ws.diff(self._current()))
        elif name == "/log":
            for event in self.ws.recent_events(self._current(), 30):
                render.print_event(event)
        elif name == "/revert" and not rest:
            render.err_console.print("give the checkpoint: /revert -1 (one back), a sha or base")
            for info in self.ws.checkpoints(self._current())[-10:]:
                render.console.print(f"  {info.commit[:10]} {escape(info.message)}")
        elif name == "/revert":
            reverted = self.ws.revert(self._current(), to=rest[0])
            render.console.print(f"reverted to {reverted.to_checkpoint[:10]}")
        elif name == "/model":
            if rest:
                self.model, self._model = self.ws.check_model(rest[0]), None
            render.console.print(f"model: {escape(self.model or 'default')}")
        elif name == "/compact":
            done = self.ws.compact(self._current(), model=self._model or self.model)
            render.console.print(render.compaction_line(done))
        elif name == "/mode":
            self.mode = self.ws.check_mode(rest[0]) if rest else self.mode
            render.console.print(f"mode: {self.mode or 'project default'}")
        else:
            render.err_console.print(
                "commands: /diff /log /revert CKPT /model [M] /mode [M] /compact /exit"
            )
        return True

    def _current(self) -> str:
        """The chat's session; a command never creates one (a message does)."""
        if self.session is None:
            found = self.ws.current_session(self.project) if self.project else None
            self.session = (found or self.ws.session(None)).id
        return self.session
