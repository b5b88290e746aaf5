"""Who a request acts as, and whether it may: FastAPI dependencies.

A request authenticates with `Authorization: Bearer TOKEN` (scripts, share links, and the
browser, which keeps the token a login link gives per origin), or with the `bw_session` cookie
of earlier versions (an unsafe method with it must come from this server's own origin; no
cookie is set any more: every port of the host would get it). Then the token's rate
limit is counted, and the route's dependency checks the principal's role in the project of what
it touches (`Principal.may`). What a principal may not read is reported as not found, so that
ids of other projects' sessions are not confirmed to exist.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

import branchwork as bw
from branchwork.api.context import ServerContext, context
from branchwork.api.limits import MAX_STREAMS_PER_TOKEN

COOKIE = "bw_session"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _token_of(request: HTTPConnection) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a cross-site browser request (browsers send Origin on those)
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def authenticate(
    request: Request, server: Annotated[ServerContext, Depends(context)]
) -> bw.Principal:
    token, by_cookie = _token_of(request)
    if token is None:
        raise bw.Unauthenticated(
            "this API needs a token: send `Authorization: Bearer TOKEN` (`branchwork user add "
            "NAME` prints one), or open the login link `branchwork serve --local` prints"
        )
    if by_cookie and request.method in _UNSAFE and not _same_origin(request):
        raise bw.Forbidden("a request with the browser's cookie must come from this server's pages")
    principal = principal_of_token(request, server, token)
    server.limiter.take(principal.token_id)
    request.state.principal = principal
    return principal


def principal_of_token(
    connection: HTTPConnection, server: ServerContext, token: str
) -> bw.Principal:
    """Who `token` acts as. Wrong tokens are rate limited per client address (each costs a
    read of the store): over the limit, that address is refused before any read."""
    address = f"unknown-tokens:{connection.client.host if connection.client else '?'}"
    what = "requests with unknown tokens from this address"
    server.limiter.take(address, spend=False, what=what)
    try:
        return server.ws.authenticate(token)
    except bw.Unauthenticated:
        with contextlib.suppress(bw.RateLimited):
            server.limiter.take(address, what=what)
        raise


CurrentPrincipal = Annotated[bw.Principal, Depends(authenticate)]


def hold_stream(
    connection: HTTPConnection, principal: bw.Principal, server: ServerContext
) -> Callable[[], None]:
    """Count one more event stream of the principal's token (429 over the cap); returns the
    function that lets it go. A share link is sent to many people: its streams are counted
    per client address."""
    key = f"streams:{principal.token_id}"
    if principal.session_id is not None and connection.client is not None:
        key += f":{connection.client.host}"
    return server.holds.take(key, MAX_STREAMS_PER_TOKEN, "event streams of this token")


def token_of(connection: HTTPConnection) -> str | None:
    """The token a request carries (bearer header, else the cookie of earlier versions)."""
    return _token_of(connection)[0]


def still_allowed(
    token: str | None,
    server: ServerContext,
    project_id: str,
    role: bw.Role,
    session_id: str | None = None,
) -> Callable[[], bool]:
    """A check a long-lived connection (a stream, the terminal) makes again while it lasts:
    whether its token still works and still holds `role`, so that revoking a token or a role
    ends what it opened, not just its next request. (It reads the store: call it off the event
    loop, at most every second or so.)"""

    def allowed() -> bool:
        if token is None:
            return False
        try:
            principal = server.ws.authenticate(token)
        except bw.Unauthenticated:
            return False
        return principal.may(project_id, role, session_id=session_id)

    return allowed


def not_a_share_link(principal: CurrentPrincipal) -> bw.Principal:
    if principal.session_id is not None:
        raise bw.Forbidden("a share link reads its one session only")
    return principal


Person = Annotated[bw.Principal, Depends(not_a_share_link)]


def admin(principal: Person) -> bw.Principal:
    if not principal.is_admin:
        raise bw.Forbidden(
            "only an admin may do this; ask one (`branchwork user grant NAME --role admin`)"
        )
    return principal


Admin = Annotated[bw.Principal, Depends(admin)]


def _refuse(principal: bw.Principal, project: bw.Project, role: bw.Role) -> bw.Forbidden:
    held = principal.role_in(project.id) or "no role"
    return bw.Forbidden(
        f"this needs the {role} role in project {project.name!r} and {principal.name} has "
        f"{held}; ask an admin (`branchwork user grant {principal.name} --role {role} "
        f"--project {project.name}`)"
    )


def session_with(role: bw.Role) -> Callable[..., bw.Session]:
    """A dependency: the session of the path, once the principal may act on it with `role`."""

    def dependency(
        session_id: str,
        principal: CurrentPrincipal,
        server: Annotated[ServerContext, Depends(context)],
    ) -> bw.Session:
        ws = server.ws
        unknown = bw.NotFound(
            f"no session {session_id!r} that you may see; GET /api/projects/{{project}}/sessions "
            "lists those of your projects"
        )
        try:
            session = ws.session(session_id)
        except bw.NotFound:
            raise unknown from None
        if not principal.may(session.project_id, "viewer", session_id=session.id):
            raise unknown
        if not principal.may(session.project_id, role, session_id=session.id):
            if principal.session_id is not None:
                raise bw.Forbidden("a share link may only read its session")
            raise _refuse(principal, ws.project(session.project_id), role)
        return session

    return dependency


def project_with(role: bw.Role) -> Callable[..., bw.Project]:
    """A dependency: the project of the path, once the principal may act in it with `role`."""

    def dependency(
        project: str,
        principal: Person,
        server: Annotated[ServerContext, Depends(context)],
    ) -> bw.Project:
        found = server.ws.project(project)
        if principal.role_in(found.id) is None:
            raise bw.NotFound(f"no project {project!r}; GET /api/projects lists yours")
        if not principal.may(found.id, role):
            raise _refuse(principal, found, role)
        return found

    return dependency


SessionViewer = Annotated[bw.Session, Depends(session_with("viewer"))]
SessionMember = Annotated[bw.Session, Depends(session_with("member"))]
ProjectViewer = Annotated[bw.Project, Depends(project_with("viewer"))]
ProjectMember = Annotated[bw.Project, Depends(project_with("member"))]
ProjectMaintainer = Annotated[bw.Project, Depends(project_with("maintainer"))]
