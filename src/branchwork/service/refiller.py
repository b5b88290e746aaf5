"""The detached process that refills a project's pool: `python -m branchwork.service.refiller
PROJECT_ID`. Its settings come from the environment its parent gave it (`pool.request_refill`).
A module of its own, which nothing imports, so that it runs once as `__main__`."""

from __future__ import annotations

import sys

from branchwork.service.pool import run_refiller

if __name__ == "__main__":
    sys.exit(run_refiller(sys.argv[1]))
