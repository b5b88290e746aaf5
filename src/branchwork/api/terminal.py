"""The browser terminal: a WebSocket to a shell on a pseudo-terminal in the session's sandbox.

Messages from the browser are JSON: `{"type": "input", "data": "ls\\r"}` or `{"type": "resize",
"rows": 30, "cols": 100}`; the server sends the shell's output as text frames. The shell is
closed (and its transcript recorded as `terminal_closed`) when the socket closes, and the socket
when the shell exits. Members may open one; the cookie (or a bearer header) authenticates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

import branchwork as bw
from branchwork.api import auth
from branchwork.api.context import ServerContext
from branchwork.api.limits import MAX_TERMINALS_PER_USER

router = APIRouter(tags=["terminal"])
RECHECK_S = 1.0  # how often an open terminal checks that its token may still use it
PROTOCOL = "bw.bearer"  # the subprotocol whose companion is the browser's token


@router.websocket("/api/sessions/{session_id}/terminal")
async def terminal(websocket: WebSocket, session_id: str) -> None:
    server: ServerContext = websocket.app.state.server
    try:
        token = _token(websocket)
        principal = await run_in_threadpool(_principal, websocket, server, token)
        dependency = auth.session_with("member")
        session = await run_in_threadpool(dependency, session_id, principal, server)
    except bw.BranchworkError as exc:
        await websocket.close(code=4403, reason=exc.message[:120])
        return
    allowed = auth.still_allowed(token, server, session.project_id, "member", session.id)
    key = f"terminals:{principal.user_id}"
    try:
        release = server.holds.take(key, MAX_TERMINALS_PER_USER, f"terminals of {principal.name}")
    except bw.RateLimited as exc:
        await websocket.close(code=4429, reason=exc.message[:120])
        return
    try:
        await websocket.accept(subprotocol=PROTOCOL if _offered_token(websocket) else None)
        await _run(websocket, server, session, principal, allowed)
    finally:
        release()


async def _run(
    websocket: WebSocket,
    server: ServerContext,
    session: bw.Session,
    principal: bw.Principal,
    allowed: Callable[[], bool],
) -> None:
    rows, cols = _size(websocket)
    opened = await run_in_threadpool(
        server.ws.open_terminal, session, user=principal.name, rows=rows, cols=cols
    )
    try:
        await _pump(websocket, opened, allowed)
    finally:
        await run_in_threadpool(opened.close)


def _token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    return token or _offered_token(websocket) or websocket.cookies.get(auth.COOKIE)


def _principal(websocket: WebSocket, server: ServerContext, token: str | None) -> bw.Principal:
    origin = websocket.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != websocket.headers.get("host"):
        raise bw.Forbidden("a terminal may only be opened from this server's pages")
    if not token:
        raise bw.Unauthenticated("log in first")
    principal = auth.principal_of_token(websocket, server, token)
    server.limiter.take(principal.token_id)
    return principal


def _offered_token(websocket: WebSocket) -> str | None:
    """The token a browser sends as its second subprotocol (`new WebSocket(url, [PROTOCOL,
    token])`): a page cannot set a WebSocket's headers."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    return offered[1] if len(offered) > 1 and offered[0] == PROTOCOL else None


def _size(websocket: WebSocket) -> tuple[int, int]:
    try:
        return int(websocket.query_params.get("rows", 24)), int(
            websocket.query_params.get("cols", 80)
        )
    except ValueError:
        return 24, 80


async def _pump(websocket: WebSocket, opened: bw.Terminal, allowed: Callable[[], bool]) -> None:
    """Shell output to the socket, socket input to the shell, until either ends (or the token
    that opened it is revoked, or loses its role)."""
    reader = asyncio.create_task(_to_socket(websocket, opened, allowed))
    try:
        while not reader.done():
            try:
                message = await websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                break
            if message["type"] == "websocket.disconnect":
                break
            if isinstance(message.get("text"), str):  # binary frames: the page sends none
                _apply(opened, message["text"])
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _to_socket(
    websocket: WebSocket, opened: bw.Terminal, allowed: Callable[[], bool]
) -> None:
    checked = time.monotonic()
    while True:
        if time.monotonic() - checked > RECHECK_S:
            checked = time.monotonic()
            if not await run_in_threadpool(allowed):
                await websocket.close(code=4401, reason="access revoked")
                return
        text = await run_in_threadpool(opened.read, 0.25)
        if text is None:
            await websocket.close(code=1000, reason="the shell exited")
            return
        if text:
            await websocket.send_text(text)


def _apply(opened: bw.Terminal, message: str) -> None:
    try:
        data = json.loads(message)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    if data.get("type") == "input" and isinstance(data.get("data"), str):
        opened.write(data["data"].encode("utf-8", "replace"))  # "\ud800" is valid JSON
    elif data.get("type") == "resize":
        with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError):
            opened.resize(int(data["rows"]), int(data["cols"]))
