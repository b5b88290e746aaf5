#!/usr/bin/env bash
# Fetch the web UI's third-party files from the npm registry (pinned versions) into
# src/branchwork/web/static/vendor/, with their licences. Run at development time only: the
# files are committed, so the server never fetches anything at run time.
set -euo pipefail
DEST="$(cd "$(dirname "$0")/.." && pwd)/src/branchwork/web/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fetch() {  # package@version, then pairs of (path in the package, file name in vendor/)
  local spec="$1"; shift
  local tgz; tgz="$(npm pack --silent "$spec")"
  mkdir -p "$spec" && tar -xzf "$tgz" -C "$spec"
  while [ "$#" -gt 0 ]; do cp "$spec/package/$1" "$DEST/$2"; shift 2; done
}
mkdir -p "$DEST"
fetch @xterm/xterm@6.0.0 lib/xterm.js xterm.js css/xterm.css xterm.css LICENSE xterm.LICENSE
fetch @xterm/addon-fit@0.11.0 lib/addon-fit.js addon-fit.js LICENSE addon-fit.LICENSE
fetch @highlightjs/cdn-assets@11.12.0 highlight.min.js highlight.min.js \
  styles/github.min.css highlight-github.min.css LICENSE highlight.LICENSE
ls -l "$DEST"
