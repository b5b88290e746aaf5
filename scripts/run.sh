#!/usr/bin/env bash
# `make run`: the server and web UI with the embedded defaults (SQLite, the embedded model), on
# 127.0.0.1. The first start creates a small demo repository and registers it; later starts
# reuse the same data (in .demo/, or BRANCHWORK_HOME). Prints the URL and a one-time login link.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$ROOT/.venv/bin:$PATH"
DEMO="${BRANCHWORK_DEMO_DIR:-$ROOT/.demo}"
export BRANCHWORK_HOME="${BRANCHWORK_HOME:-$DEMO/home}"
PORT="${PORT:-8765}"
# shellcheck source=scripts/greeter.sh
source "$ROOT/scripts/greeter.sh"

if ! branchwork project show greeter >/dev/null 2>&1; then
  REPO="$DEMO/greeter"
  if [ ! -d "$REPO/.git" ]; then
    make_greeter "$REPO"
  fi
  branchwork project add "$REPO" --name greeter
  branchwork session new --project greeter --title "try the agent" >/dev/null
fi
echo "Data: $BRANCHWORK_HOME (model: the embedded one unless BRANCHWORK_MODEL is set)"
exec branchwork serve --local --port "$PORT"
