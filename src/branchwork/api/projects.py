"""Routes of projects: list, add, show, their sessions, their live session list, search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sse_starlette import EventSourceResponse

import branchwork as bw
from branchwork.api import streams
from branchwork.api.auth import (
    Admin,
    Person,
    ProjectMember,
    ProjectViewer,
    hold_stream,
    still_allowed,
    token_of,
)
from branchwork.api.context import ServerContext, context
from branchwork.api.schemas import ProjectIn, SessionIn, SessionOut, project_out

router = APIRouter(prefix="/api/projects", tags=["projects"])
Server = Annotated[ServerContext, Depends(context)]


@router.get("")
def list_projects(principal: Person, server: Server) -> list[bw.Project]:
    """The projects you hold a role in."""
    return [project_out(p) for p in server.ws.projects() if principal.role_in(p.id) is not None]


@router.post("", status_code=201)
def add_project(body: ProjectIn, _: Admin, server: Server) -> bw.Project:
    """Register a repository (admins)."""
    return project_out(server.ws.add_project(body.source, name=body.name))


@router.get("/{project}")
def show_project(project: ProjectViewer) -> bw.Project:
    return project_out(project)


@router.get("/{project}/sessions")
def list_sessions(
    project: ProjectViewer, server: Server, archived: bool = False
) -> list[SessionOut]:
    """The project's sessions, newest first, as the session list shows them."""
    ws = server.ws
    found = ws.sessions(project, include_archived=archived)
    return [SessionOut.model_validate(streams.summary_json(ws.session_summary(s))) for s in found]


@router.post("/{project}/sessions", status_code=201)
def new_session(project: ProjectMember, body: SessionIn, server: Server) -> bw.Session:
    """A new session: its own branch from main and its own worktree."""
    return server.ws.new_session(
        project,
        title=body.title,
        mode=body.mode,
        model=server.ws.network_model(body.model),
        current=False,
    )


@router.get("/{project}/stream", response_class=EventSourceResponse)
async def project_stream(
    project: ProjectViewer, principal: Person, server: Server, request: Request
) -> EventSourceResponse:
    """Server-Sent Events: `snapshot` (every session), then `session` for each session whose
    log or status changes (its activity, pending approvals, last turn's status)."""
    gate = streams.Gate(
        still_allowed(token_of(request), server, project.id, "viewer"),
        hold_stream(request, principal, server),
    )
    events = streams.project_sessions(server.ws, server.bus, project.id, gate)
    return streams.response(events, gate)


@router.get("/{project}/search")
def search_main(
    project: ProjectViewer,
    server: Server,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    regex: bool = False,
    path: str | None = None,
    lang: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Search the project's main branch: the hits, best first, and whether more exist than
    `limit` let through (`capped`, `more`)."""
    hits = server.ws.search(
        q, project=project, regex=regex, path_glob=path, language=lang, limit=limit
    )
    return hits.model_dump(mode="json") | {"more": hits.more}
