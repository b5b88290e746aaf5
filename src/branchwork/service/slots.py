"""Turn slots: at most N trials of a project run agent turns at once, across processes.

A slot is an exclusive `flock` on one of N files; the kernel releases it when its holder exits,
however it exits, so a killed trial never keeps a slot. Waiting trials poll (they are few, and
a turn lasts seconds to minutes).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_S = 0.2


def _try_slot(directory: Path, count: int) -> int | None:
    """The descriptor of a slot taken now, or None when all `count` are held."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        fd = os.open(directory / f"slot-{n}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


@contextmanager
def turn_slot(
    directory: Path, count: Callable[[], int], *, keep_waiting: Callable[[], bool]
) -> Iterator[bool]:
    """Hold one of `count()` slots for the duration (read again at every try, so a changed
    limit applies to those waiting); yields False (holding nothing) when `keep_waiting` says
    to give up before one came free."""
    fd = _try_slot(directory, max(1, count()))
    while fd is None:
        if not keep_waiting():
            yield False
            return
        time.sleep(POLL_S)
        fd = _try_slot(directory, max(1, count()))
    try:
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock
