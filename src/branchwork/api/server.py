"""Running the server: uvicorn on loopback by default, and the one-time login link of
`serve --local` (a single local admin, created on first start)."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn

import branchwork as bw
from branchwork.api.app import create_app
from branchwork.api.limits import DEFAULT_RATE

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def login_url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/login#{token}"


def serve(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    local: bool = False,
    rate: float = DEFAULT_RATE,
    webhook: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the workspace of the settings in force until interrupted. With `local`, print a
    one-time login link of the local admin (created on first use). `webhook`: a URL told when
    a turn ends, needs approval, or a check fails."""
    ws = bw.Workspace()
    if webhook:
        ws.notify_webhook(webhook)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    if local:
        issued = ws.login_token()
        announce(
            f"Branchwork is at {url}\nOpen this link to log in (once, 15 minutes):\n"
            f"  {login_url(host, port, issued.secret)}"
        )
    else:
        announce(f"Branchwork is at {url} (API docs: {url}docs)")
    app = create_app(ws, rate=rate, close_workspace=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", ws="websockets-sansio")
