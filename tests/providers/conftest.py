"""Fixtures for provider tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._loopback import LoopbackServer


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
