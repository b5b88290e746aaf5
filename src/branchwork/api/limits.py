"""Rate limits per token: a token bucket each (`rate` requests a second, bursts of `burst`).

Decision: 50 requests/s sustained with bursts of 100, per token. A person in the browser
makes a few requests a second at most (a session switch is ~6); a script that reads in a loop
is slowed, not refused outright. A stream (SSE, terminal) counts once, when it opens. The
buckets live in the server's memory: several servers would each allow that much.

Request bodies are capped too (`BodyLimit`, 64 MiB: a file of 10 MB written over the API, JSON
escaped, fits).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import branchwork as bw
from branchwork.api.problems import problem

DEFAULT_RATE = 50.0
DEFAULT_BURST = 100.0
_FORGET_AFTER_S = 600.0


class RateLimiter:
    def __init__(self, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, key: str, *, spend: bool = True, what: str = "requests with this token") -> None:
        """Count one request of `key` (with `spend=False`, only check that one more would
        pass); `RateLimited` (with when to retry) when over."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
                raise bw.RateLimited(
                    f"too many {what} (over {self.rate:.0f}/s); retry in {wait:.1f} s",
                    retry_after=wait,
                )
            if spend:
                self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 10_000:
                self._forget(now)

    def _forget(self, now: float) -> None:
        for key, (_, when) in list(self._buckets.items()):
            if now - when > _FORGET_AFTER_S:
                del self._buckets[key]


MAX_BODY_BYTES = 64 * 1024 * 1024


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request's body is over {limit // (1024 * 1024)} MiB; send less (a large file "
            "is better copied into the worktree with a command)",
        )


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is refused (413) as soon as it is
    announced or, sent in chunks, as soon as it goes over: FastAPI reads a body whole, before
    the token is checked, so without it any client could make the server hold any amount."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            error = BodyTooLarge(self.limit)
            response = problem(413, "body-too-large", str(error.detail), Request(scope))
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        return counted


MAX_STREAMS_PER_TOKEN = 32
MAX_TERMINALS_PER_USER = 8


class Holds:
    """Long-lived connections open per key (a token's event streams, a user's terminals), each
    kind capped: a stream holds memory and a socket, a terminal a shell process, for as long
    as it lasts, which the rate limit (counting each once, when it opens) does not bound."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def take(self, key: str, limit: int, what: str) -> Callable[[], None]:
        """Hold one more for `key`, or `RateLimited` when `limit` are held; returns the
        function that lets it go (once, however often it is called)."""
        with self._lock:
            held = self._counts.get(key, 0)
            if held >= limit:
                raise bw.RateLimited(
                    f"{held} {what} are open already (at most {limit} at once); close one, "
                    "then retry",
                    retry_after=5.0,
                )
            self._counts[key] = held + 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                left = self._counts.get(key, 1) - 1
                if left > 0:
                    self._counts[key] = left
                else:
                    self._counts.pop(key, None)

        return release
