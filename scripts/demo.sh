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
step branchwork ask --mode autopilot --max-steps 3 "Read greet.py and say what it prints."
step branchwork log
step branchwork session list
printf '\nDemo data is in %s (BRANCHWORK_HOME=%s).\n' "$DEMO" "$BRANCHWORK_HOME"
