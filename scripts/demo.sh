#!/usr/bin/env bash
# `make run`: an offline demo of Branchwork with the embedded model, in a throw-away data dir.
# A sample project is created, a session started, a command run, and one agent turn taken by
# the embedded SmolLM2 model; its tool calls and events are printed.
set -euo pipefail
BIN="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin"
export PATH="$BIN:$PATH"
DEMO="${BRANCHWORK_DEMO_DIR:-$(mktemp -d -t branchwork-demo-XXXX)}"
export BRANCHWORK_HOME="$DEMO/home"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

mkdir -p "$DEMO/greeter"
cd "$DEMO/greeter"
git init -q -b main
cat > greet.py <<'PY'
def greet(name):
    return "Hello, " + name


if __name__ == "__main__":
    print(greet("world"))
PY
printf '# greeter\nA tiny program that greets people.\n' > README.md
git add -A
git -c user.name=Demo -c user.email=demo@example.com commit -qm "greeter"

step branchwork project add .
step branchwork session new --title "try the agent"
step branchwork run -- python greet.py
# The embedded model is tiny: the harness gives it the tools it can use, stops it when it
# repeats itself, and always ends the turn with an answer (exit code 5 says it got stuck).
step branchwork ask --mode autopilot "List the files in this project." || true
step branchwork log --kind tool_call --kind agent_message --kind turn_finished
step branchwork session show
printf '\nDemo data is in %s (BRANCHWORK_HOME=%s).\n' "$DEMO" "$BRANCHWORK_HOME"
