#!/usr/bin/env bash
# `make demo`: an offline demo of Branchwork with the embedded model, in a throw-away data dir.
# A sample project is created, a session started, a command run, and one agent turn taken by
# the embedded SmolLM2 model; its tool calls and events are printed.
set -euo pipefail
BIN="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin"
export PATH="$BIN:$PATH"
DEMO="${BRANCHWORK_DEMO_DIR:-$(mktemp -d -t branchwork-demo-XXXX)}"
export BRANCHWORK_HOME="$DEMO/home"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# shellcheck source=scripts/greeter.sh
source "$(dirname "$0")/greeter.sh"
make_greeter "$DEMO/greeter"
cd "$DEMO/greeter"

step branchwork project add .
step branchwork session new --title "try the agent"
step branchwork run -- python greet.py
# The embedded model is tiny: the harness gives it the tools it can use, stops it when it
# repeats itself, and always ends the turn with an answer (exit code 5 says it got stuck).
step branchwork ask --mode autopilot "List the files in this project." || true
step branchwork log --kind tool_call --kind agent_message --kind turn_finished
step branchwork session show
printf '\nDemo data is in %s (BRANCHWORK_HOME=%s).\n' "$DEMO" "$BRANCHWORK_HOME"
