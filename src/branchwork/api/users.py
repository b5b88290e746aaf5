"""Routes of people: who am I, logging in with a one-time link, users and roles (admins),
revoking a token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

import branchwork as bw
from branchwork.api.auth import COOKIE, Admin, CurrentPrincipal, Person
from branchwork.api.context import ServerContext, context
from branchwork.api.schemas import GrantIn, LoginIn, LoginOut, Me, TokenOut, UserIn, UserOut

router = APIRouter(prefix="/api", tags=["users"])
Server = Annotated[ServerContext, Depends(context)]


def token_out(issued: bw.IssuedToken) -> TokenOut:
    expires = issued.expires_at.isoformat() if issued.expires_at else None
    return TokenOut(id=issued.id, kind=issued.kind, token=issued.secret, expires_at=expires)


def me_of(principal: bw.Principal) -> Me:
    return Me(
        user_id=principal.user_id,
        name=principal.name,
        admin=principal.is_admin,
        grants=dict(principal.grants),
        session_id=principal.session_id,
    )


@router.get("/me")
def me(principal: CurrentPrincipal) -> Me:
    """Who the token acts as, and its roles per project (`*`: every project)."""
    return me_of(principal)


@router.post("/login")
def login(body: LoginIn, request: Request, response: Response, server: Server) -> LoginOut:
    """Exchange a one-time login token for the browser's token (7 days), which the page sends
    as a bearer header. (It was a cookie: cookies are not kept apart by port, so a session's
    dev server on another port of the same host would have received it.)"""
    # Per client address, and all addresses together: behind a proxy (and from loopback, which
    # uvicorn trusts) the address is what X-Forwarded-For says, a new one per attempt.
    server.limiter.take(f"login:{request.client.host if request.client else '?'}")
    server.limiter.take("login:*")
    issued = server.ws.exchange_login(body.token)
    response.delete_cookie(COOKIE)  # the cookie an earlier version set, sent to every port
    expires = issued.expires_at.isoformat() if issued.expires_at else None
    me = me_of(server.ws.authenticate(issued.secret))
    return LoginOut(**me.model_dump(), token=issued.secret, expires_at=expires)


@router.post("/logout", status_code=204)
def logout(principal: CurrentPrincipal, response: Response, server: Server) -> None:
    """Revoke the token this request used (the browser's cookie, or a bearer token). A share
    link is not revoked: everyone it was sent to uses it, and only its maker may end it
    (`DELETE /api/tokens/{id}`)."""
    if principal.session_id is None:
        server.ws.revoke_token(principal, principal.token_id)
    response.delete_cookie(COOKIE)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke(token_id: str, principal: Person, server: Server) -> None:
    """Revoke one of your tokens (a share link you made, for instance)."""
    server.ws.revoke_token(principal, token_id)


@router.get("/users")
def users(_: Admin, server: Server) -> list[bw.User]:
    return server.ws.users()


@router.post("/users", status_code=201)
def add_user(body: UserIn, _: Admin, server: Server) -> UserOut:
    """A new user and their token (shown this once)."""
    user, issued = server.ws.add_user(body.name, role=body.role, project=body.project)
    return UserOut(user=user, token=token_out(issued))


@router.put("/users/{name}/grants")
def grant(name: str, body: GrantIn, _: Admin, server: Server) -> bw.User:
    """Set (or with role null, take away) a user's role in a project (none: every project)."""
    return server.ws.grant(name, role=body.role, project=body.project)
