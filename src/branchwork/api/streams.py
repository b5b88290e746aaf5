"""Server-Sent Events: a session's events, and a project's session list, as they happen.

The workspace tells of changes on its threads (`Workspace.watch`: a session's log grew, in any
process; `Workspace.observe_live`: a background turn's tokens); `Bus` hands them to the event
loop. A stream never trusts a notification for content: woken, it reads the store from the last
seq it sent, so a merged or early notification loses nothing and repeats nothing.

A session stream sends each event as `event: event`, `id: <seq>`, `data: <the event's JSON>`;
live text as `event: live` without an id (it is not part of the history: the final message
follows as an event). Reconnecting with `Last-Event-ID: N` (browsers do it by themselves) or
`?after=N` resumes after seq N.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

import branchwork as bw

PAGE = 500
LIVE_BACKLOG = 2000  # live pieces kept for a slow client (older ones are dropped: not history)
PROJECT_BATCH_S = 0.1
RECHECK_S = 1.0  # a stream asks again whether its token may read, at most this often …
IDLE_WAKE_S = 10.0  # … and at least this often, idle or not


@dataclass(eq=False)
class Subscriber:
    signal: asyncio.Event = field(default_factory=asyncio.Event)
    dirty: bool = True
    live: deque[bw.LiveUpdate] = field(default_factory=lambda: deque(maxlen=LIVE_BACKLOG))
    changed: set[str] = field(default_factory=set)

    def wake(self) -> None:
        self.signal.set()


class Gate:
    """Whether a stream may go on: its token still works and still holds its role (`allowed`,
    asked again at most every `RECHECK_S`). A revoked share link or a role taken away ends the
    streams it opened, not only its next request."""

    def __init__(self, allowed: Callable[[], bool], release: Callable[[], None]) -> None:
        self._allowed = allowed
        self._when = time.monotonic()  # the route has just checked
        self.release = release  # what the stream holds (`limits.Holds`), let go when it ends

    async def open(self) -> bool:
        now = time.monotonic()
        if now - self._when < RECHECK_S:
            return True
        self._when = now
        return await run_in_threadpool(self._allowed)


async def _sleep_until(signal: asyncio.Event) -> None:
    """Wait for `signal`, or `IDLE_WAKE_S` (so that an idle stream checks its gate too)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(signal.wait(), IDLE_WAKE_S)


def response(events: AsyncIterator[ServerSentEvent], gate: Gate) -> EventSourceResponse:
    """The stream of `events` as SSE. What it holds is let go when the stream ends, and also
    after the response (a client gone before the stream began never runs its `finally`)."""
    return EventSourceResponse(events, ping=15, background=BackgroundTask(gate.release))


class Feed:
    """One session's pages of events, shared by its streams: the clients at the tip of a busy
    session ask for the same page after the same change, and one read serves them all.

    `version` counts the changes seen. A client asks for a page read no earlier than the
    version it was woken for (`fresh_from`); a page read since then has every event that
    change announced, so it is reused. Older pages never are: a client is never handed a page
    that misses what woke it. At most one read per change and page start, whatever the number
    of clients."""

    KEEP = 64  # page starts remembered

    def __init__(self) -> None:
        self.version = 0
        self._lock = asyncio.Lock()
        self._pages: dict[tuple[int, tuple[str, ...]], tuple[int, list[tuple[int, str]]]] = {}

    def changed(self) -> None:
        self.version += 1

    async def page(
        self,
        ws: bw.Workspace,
        session_id: str,
        after: int,
        kinds: Sequence[str] | None,
        fresh_from: int,
    ) -> list[tuple[int, str]]:
        key = (after, tuple(kinds or ()))
        async with self._lock:
            cached = self._pages.get(key)
            if cached is not None and cached[0] >= fresh_from:
                return cached[1]
            version = self.version
            found = await run_in_threadpool(
                ws.event_page, session_id, after_seq=after, limit=PAGE, kinds=kinds
            )
            self._pages[key] = (version, found)
            if len(self._pages) > self.KEEP:
                del self._pages[next(iter(self._pages))]
            return found


class Bus:
    """Changes seen by the workspace's threads, delivered to the streams on the event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._feeds: dict[str, Feed] = {}
        self._sessions: dict[str, set[Subscriber]] = {}
        self._projects: dict[str, set[Subscriber]] = {}
        self._stops: list[Any] = []

    def start(self, ws: bw.Workspace, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._stops = [ws.watch(self._on_mark), ws.observe_live(self._on_live)]

    def stop(self) -> None:
        for stop in self._stops:
            stop()
        self._stops = []

    def _on_mark(self, mark: bw.SessionMark) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._deliver_mark, mark)

    def _on_live(self, update: bw.LiveUpdate) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._deliver_live, update)

    def _deliver_mark(self, mark: bw.SessionMark) -> None:
        feed = self._feeds.get(mark.session_id)
        if feed is not None:
            feed.changed()
        for sub in self._sessions.get(mark.session_id, ()):
            sub.dirty = True
            sub.wake()
        for sub in self._projects.get(mark.project_id, ()):
            sub.changed.add(mark.session_id)
            sub.wake()

    def _deliver_live(self, update: bw.LiveUpdate) -> None:
        for sub in self._sessions.get(update.session_id, ()):
            sub.live.append(update)
            sub.wake()

    def subscribe(self, session_id: str | None = None, project_id: str | None = None) -> Subscriber:
        sub = Subscriber()
        if session_id is not None:
            self._sessions.setdefault(session_id, set()).add(sub)
            self._feeds.setdefault(session_id, Feed())
        if project_id is not None:
            self._projects.setdefault(project_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        for table in (self._sessions, self._projects):
            for key in [k for k, subs in table.items() if sub in subs]:
                table[key].discard(sub)
                if not table[key]:
                    del table[key]
                    if table is self._sessions:
                        self._feeds.pop(key, None)

    def feed(self, session_id: str) -> Feed:
        return self._feeds.setdefault(session_id, Feed())

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._sessions.values()) + sum(
            len(s) for s in self._projects.values()
        )


async def session_events(
    ws: bw.Workspace,
    bus: Bus,
    session_id: str,
    after: int,
    kinds: Sequence[str] | None,
    gate: Gate,
) -> AsyncIterator[ServerSentEvent]:
    """The session's events after seq `after`, then each one as it is recorded, with live text
    in between; it ends when `gate` closes."""
    sub = bus.subscribe(session_id=session_id)
    last = after
    try:
        while await gate.open():
            while sub.live:  # first: the pieces of a message come before the message
                yield _live(sub.live.popleft())
            if sub.dirty:
                sub.dirty = False
                feed = bus.feed(session_id)
                page = await feed.page(ws, session_id, last, kinds, feed.version)
                for seq, line in page:
                    yield ServerSentEvent(data=line, event="event", id=str(seq))
                    last = seq
                if len(page) == PAGE:
                    sub.dirty = True
            if not sub.dirty and not sub.live:
                sub.signal.clear()
                await _sleep_until(sub.signal)
    finally:
        bus.unsubscribe(sub)
        gate.release()


def _live(update: bw.LiveUpdate) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps({"channel": update.channel, "text": update.text}), event="live"
    )


def summary_json(summary: bw.SessionSummary) -> dict[str, Any]:
    return {
        **summary.session.model_dump(mode="json"),
        "short_id": summary.session.short_id,
        "activity": summary.activity,
        "last_turn_status": summary.last_turn_status,
        "pending_approvals": summary.pending_approvals,
        "last_seq": summary.last_seq,
        "turns": summary.turns,
    }


def _summaries(ws: bw.Workspace, project_id: str) -> list[dict[str, Any]]:
    found = ws.sessions(project_id, include_archived=True)
    return [summary_json(ws.session_summary(s)) for s in found]


def _changed(ws: bw.Workspace, ids: list[str]) -> list[dict[str, Any]]:
    return [summary_json(ws.session_summary(i)) for i in ids]


async def project_sessions(
    ws: bw.Workspace, bus: Bus, project_id: str, gate: Gate
) -> AsyncIterator[ServerSentEvent]:
    """The project's sessions (`snapshot`), then each session whose log or status changed
    (`session`), as the session list shows them; it ends when `gate` closes."""
    sub = bus.subscribe(project_id=project_id)
    try:
        initial = await run_in_threadpool(_summaries, ws, project_id)
        yield ServerSentEvent(data=json.dumps(initial), event="snapshot")
        while True:
            if not sub.changed:
                sub.signal.clear()
                await _sleep_until(sub.signal)
            if not await gate.open():
                return
            if not sub.changed:
                continue
            await asyncio.sleep(PROJECT_BATCH_S)  # one update for a burst of events
            ids, sub.changed = sorted(sub.changed), set()
            for item in await run_in_threadpool(_changed, ws, ids):
                yield ServerSentEvent(data=json.dumps(item), event="session")
    finally:
        bus.unsubscribe(sub)
        gate.release()
