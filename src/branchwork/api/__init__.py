"""The HTTP API (FastAPI): REST, Server-Sent Events, the browser terminal, auth; errors as JSON
problem responses in one place (`problems.py`).

```
app.py        create_app(workspace): the routers, the error handlers, the web UI
server.py     serve(...): uvicorn on 127.0.0.1 unless told otherwise; `--local` login link
auth.py       who a request acts as (bearer token or browser cookie), roles per project
limits.py     rate limits per token
problems.py   BranchworkError → HTTP status + problem JSON
streams.py    SSE of a session's events (seq = SSE id) and of a project's session list
projects.py, sessions.py, users.py, terminal.py   the routes
schemas.py    request and response bodies
```
"""

from branchwork.api.app import create_app
from branchwork.api.server import serve

__all__ = ["create_app", "serve"]
