"""What every request of one server shares: the workspace, the rate limiter, the stream bus,
the count of streams and terminals open."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

import branchwork as bw
from branchwork.api.limits import Holds, RateLimiter
from branchwork.api.streams import Bus


@dataclass
class ServerContext:
    ws: bw.Workspace
    limiter: RateLimiter
    bus: Bus
    holds: Holds = field(default_factory=Holds)


def context(request: Request) -> ServerContext:
    found: ServerContext = request.app.state.server
    return found
