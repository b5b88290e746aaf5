"""Serving the web UI: the single page at /, /login and /share (the page reads which from its
address), its files under /static. Every file is local to the package."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
# The page runs only our own scripts: no inline script, nothing from another origin.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def page() -> FileResponse:
        headers = {"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"}
        return FileResponse(STATIC / "index.html", headers=headers)

    for path in ("/", "/login", "/share"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
