"""Whether the process that holds something (a turn's lease, a running command) still lives."""

from __future__ import annotations

import os
import socket


def this_host() -> str:
    return socket.gethostname()


def process_is_gone(pid: int | None, host: str | None) -> bool:
    """True only when `pid` is known to have exited: on this host, and not this very process.
    A process on another host, or one we may not signal, counts as alive."""
    if pid is None or host != this_host() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
