"""Routes of one session: show, archive, restore, messages (turns in the background), cancel,
approvals, commands, files, diff, checkpoints, revert, events (paged and streamed), search,
export, share links."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse

import branchwork as bw
from branchwork.api import streams
from branchwork.api.auth import (
    CurrentPrincipal,
    Person,
    SessionMember,
    SessionViewer,
    hold_stream,
    still_allowed,
    token_of,
)
from branchwork.api.context import ServerContext, context
from branchwork.api.schemas import (
    AnswerIn,
    CancelOut,
    CheckpointIn,
    CommandIn,
    CommandOut,
    DiffOut,
    EventsPage,
    FileIn,
    FileOut,
    MessageIn,
    RevertIn,
    SessionDetailsOut,
    SessionOut,
    TicketOut,
    TokenOut,
    WriteOut,
    project_out,
)
from branchwork.api.task_schemas import ForkIn

router = APIRouter(prefix="/api/sessions/{session_id}", tags=["sessions"])
Server = Annotated[ServerContext, Depends(context)]
Kinds = Annotated[list[str] | None, Query(alias="kind", description="Only these kinds.")]
# A seq the store can compare with: SQLite's integers end at 2**63 - 1 (a larger `after` was
# a 500, and reset a stream's connection once its headers were sent).
After = Annotated[int, Query(ge=0, le=2**63 - 1)]
_SEQ = re.compile(r"[0-9]{1,18}")  # ASCII digits only: `str.isdigit` accepts "²", `int` not


def _dump(value: Any) -> dict[str, Any] | None:
    return None if value is None else value.model_dump(mode="json")


@router.get("")
def show(session: SessionViewer, server: Server) -> SessionDetailsOut:
    """The session, its project, the state its history adds up to."""
    ws = server.ws
    details = ws.session_details(session)
    summary = streams.summary_json(ws.session_summary(details.session))
    return SessionDetailsOut(
        session=SessionOut.model_validate(summary),
        project=project_out(details.project),
        state=details.state,
        answerable_approvals=[r.request_id for r in ws.waiting_approvals(session)],
    )


@router.post("/archive")
def archive(session: SessionMember, server: Server, force: bool = False) -> bw.Session:
    """Remove the worktree, keep the branch and history."""
    return server.ws.archive_session(session, force=force)


@router.post("/restore")
def restore(session: SessionMember, server: Server) -> bw.Session:
    return server.ws.restore_session(session)


@router.post("/fork", status_code=201)
def fork(session: SessionMember, body: ForkIn, server: Server) -> bw.Session:
    """A new session going on from this one at a checkpoint or event seq (default: its
    newest), with its conversation up to there; with `as_trial`, a new trial of its task."""
    return server.ws.fork_session(
        session, at=body.at, title=body.title, as_trial=body.as_trial, current=False
    )


@router.post("/messages", status_code=202)
def send_message(session: SessionMember, body: MessageIn, server: Server) -> TicketOut:
    """Start an agent turn on the message; it runs in the background. Follow it on the event
    stream (its answer streams live); actions it asks about wait at /approvals."""
    ticket = server.ws.start_turn(
        session,
        body.text,
        model=server.ws.network_model(body.model),
        mode=body.mode,
        max_steps=body.max_steps,
    )
    return TicketOut(session_id=ticket.session_id, first_seq=ticket.first_seq)


@router.post("/cancel")
def cancel(session: SessionMember, server: Server) -> CancelOut:
    """Ask the running turn (in any process) to stop."""
    return CancelOut(cancel_requested=server.ws.cancel_turn(session))


@router.get("/approvals")
def approvals(session: SessionViewer, server: Server) -> list[bw.ApprovalRequested]:
    """The approval requests waiting for an answer on this server."""
    return server.ws.waiting_approvals(session)


@router.post("/approvals/{request_id}", status_code=204)
def answer(session: SessionMember, request_id: str, body: AnswerIn, server: Server) -> None:
    """Approve or refuse what the agent asks to do."""
    server.ws.answer_approval(session, request_id, approved=body.approved, reason=body.reason)


@router.post("/commands")
def run_command(session: SessionMember, body: CommandIn, server: Server) -> CommandOut:
    """Run a shell line in the session's worktree (recorded, output streamed as events)."""
    outcome = server.ws.run(session, body.command, timeout=body.timeout)
    return CommandOut(finished=_dump(outcome.finished) or {}, checkpoint=_dump(outcome.checkpoint))


@router.get("/files")
def list_files(session: SessionViewer, server: Server, path: str = ".") -> list[str]:
    return server.ws.list_files(session, path)


@router.get("/files/{path:path}")
def read_file(
    session: SessionViewer,
    path: str,
    server: Server,
    start_line: Annotated[int | None, Query(ge=1)] = None,
    end_line: Annotated[int | None, Query(ge=1)] = None,
) -> FileOut:
    text = server.ws.read_file(session, path, start_line=start_line, end_line=end_line)
    return FileOut(path=path, content=text)


@router.put("/files/{path:path}")
def write_file(session: SessionMember, path: str, body: FileIn, server: Server) -> WriteOut:
    """Write a file (its diff recorded, a checkpoint taken)."""
    outcome = server.ws.write_file(session, path, body.content)
    return WriteOut(written=_dump(outcome.written) or {}, checkpoint=_dump(outcome.checkpoint))


@router.get("/diff")
def diff(
    session: SessionViewer,
    server: Server,
    against: Annotated[str, Query(min_length=1, max_length=100)] = "main",
) -> DiffOut:
    """What the session changed against `main` (default), its `base`, or a checkpoint."""
    return DiffOut(against=against, diff=server.ws.diff(session, against=against))


@router.get("/checkpoints")
def checkpoints(session: SessionViewer, server: Server) -> list[bw.CheckpointInfo]:
    return server.ws.checkpoints(session)


@router.post("/checkpoints", status_code=201)
def checkpoint(session: SessionMember, body: CheckpointIn, server: Server) -> dict[str, Any] | None:
    """Commit the worktree's state now (null when nothing changed)."""
    return _dump(server.ws.checkpoint(session, body.message))


@router.post("/revert")
def revert(session: SessionMember, body: RevertIn, server: Server) -> dict[str, Any]:
    """Restore the files of a checkpoint, as a new checkpoint."""
    return _dump(server.ws.revert(session, to=body.to)) or {}


@router.get("/events")
def events(
    session: SessionViewer,
    server: Server,
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    kinds: Kinds = None,
) -> EventsPage:
    """A page of the session's events after seq `after` (resume with `after=last_seq`)."""
    page = server.ws.event_page(session, after_seq=after, limit=limit, kinds=kinds)
    last = page[-1][0] if page else after
    return EventsPage(
        events=[json.loads(line) for _, line in page], last_seq=last, more=len(page) == limit
    )


@router.get("/events/stream", response_class=EventSourceResponse)
async def stream(
    session: SessionViewer,
    principal: CurrentPrincipal,
    server: Server,
    request: Request,
    after: After = 0,
    kinds: Kinds = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Server-Sent Events: the events after `after` (or after `Last-Event-ID`), then each new
    one (`event: event`, `id: seq`), and the model's answer as it is written (`event: live`)."""
    start = after
    if last_event_id and _SEQ.fullmatch(last_event_id.strip()):
        start = int(last_event_id.strip())  # anything else is not an id this server sent
    if kinds:
        server.ws.event_page(session, limit=1, kinds=kinds)  # unknown kinds: refused here
    allowed = still_allowed(token_of(request), server, session.project_id, "viewer", session.id)
    gate = streams.Gate(allowed, hold_stream(request, principal, server))
    events = streams.session_events(server.ws, server.bus, session.id, start, kinds, gate)
    return streams.response(events, gate)


@router.get("/search")
def search(
    session: SessionMember,
    server: Server,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    regex: bool = False,
    path: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Search the session's files (recorded as a context reference): the hits, best first, and
    whether more exist than `limit` let through (`capped`, `more`)."""
    hits = server.ws.search(q, session=session, regex=regex, path_glob=path, limit=limit)
    return hits.model_dump(mode="json") | {"more": hits.more}


@router.get("/export")
def export(
    session: SessionViewer,
    server: Server,
    format: Annotated[str, Query(pattern="^(jsonl|html)$")] = "html",
) -> StreamingResponse:
    """The whole history as JSON lines or one self-contained HTML page, to keep offline."""
    pieces = server.ws.export(session, fmt=format)
    media = "text/html; charset=utf-8" if format == "html" else "application/x-ndjson"
    name = f"branchwork-{session.short_id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(pieces, media_type=media, headers=headers)


@router.post("/share", status_code=201)
def share(session: SessionViewer, principal: Person, request: Request, server: Server) -> TokenOut:
    """A read-only link to this session alone (30 days, or until revoked)."""
    issued = server.ws.share_session(session, principal)
    url = f"{str(request.base_url).rstrip('/')}/share#{issued.secret}"
    expires = issued.expires_at.isoformat() if issued.expires_at else None
    return TokenOut(
        id=issued.id, kind=issued.kind, token=issued.secret, expires_at=expires, url=url
    )
