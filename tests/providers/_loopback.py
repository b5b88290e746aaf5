"""A loopback HTTP server that replays recorded responses.

The SDKs talk real HTTP to it; nothing is patched. Each test queues the responses it wants
(status, headers, body) and reads back the requests the server received.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class CannedResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackServer:
    def __init__(self) -> None:
        self.responses: deque[CannedResponse] = deque()
        self.requests: list[ReceivedRequest] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply_json(self, status: int, payload: Any, **headers: str) -> None:
        body = json.dumps(payload).encode()
        self.responses.append(CannedResponse(status=status, body=body, headers=headers))

    def reply_sse(self, events: list[tuple[str | None, Any]]) -> None:
        """Queue a `text/event-stream` body; an event of None has no `event:` line, and a
        str payload is sent as is (for `[DONE]`)."""
        lines: list[str] = []
        for name, payload in events:
            if name is not None:
                lines.append(f"event: {name}")
            data = payload if isinstance(payload, str) else json.dumps(payload)
            lines.append(f"data: {data}\n")
        body = ("\n".join(lines) + "\n").encode()
        self.responses.append(CannedResponse(body=body, content_type="text/event-stream"))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    ReceivedRequest(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                canned = (
                    server.responses.popleft()
                    if server.responses
                    else CannedResponse(status=500, body=b'{"error": "nothing queued"}')
                )
                self.send_response(canned.status)
                self.send_header("Content-Type", canned.content_type)
                self.send_header("Content-Length", str(len(canned.body)))
                self.send_header("Connection", "close")
                for key, value in canned.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(canned.body)
                self.close_connection = True

        return Handler
