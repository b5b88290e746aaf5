"""The FastAPI application: the API under /api (OpenAPI at /docs), the web UI at /.

`create_app` takes the workspace the server serves; `serve` (server.py) runs it with uvicorn.
One workspace serves every request: its store gives each thread its own connection, and its
background turns and watcher live as long as the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import branchwork as bw
from branchwork.api import problems, projects, proposals, sessions, tasks, terminal, users
from branchwork.api.context import ServerContext
from branchwork.api.limits import DEFAULT_BURST, DEFAULT_RATE, BodyLimit, RateLimiter
from branchwork.api.streams import Bus
from branchwork.web import routes as web_routes

DESCRIPTION = """\
Branchwork's HTTP API: the use cases of the CLI, over HTTP, for the web UI and for scripts.

Every call needs `Authorization: Bearer TOKEN` (`branchwork user add NAME` prints a token), or
the browser cookie a login link gives. Errors are JSON problem responses (RFC 9457) whose
`detail` says what to do. Streams are Server-Sent Events; see docs/server.md.
"""


def create_app(
    ws: bw.Workspace,
    *,
    rate: float = DEFAULT_RATE,
    burst: float = DEFAULT_BURST,
    close_workspace: bool = False,
) -> FastAPI:
    """The app serving `ws` (closed with the app when `close_workspace`)."""
    bus = Bus()
    server = ServerContext(ws, RateLimiter(rate, burst), bus)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus.start(ws, asyncio.get_running_loop())
        try:
            yield
        finally:
            bus.stop()
            if close_workspace:
                ws.close()

    app = FastAPI(
        title="Branchwork",
        version=bw.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_middleware(BodyLimit)
    problems.install(app)
    for module in (users, projects, sessions, terminal, tasks, proposals):
        app.include_router(module.router)
    app.include_router(tasks.suggestions)
    web_routes.install(app)
    return app
