#!/usr/bin/env bash
# The demo shop's end-to-end browser test (examples/demo/test/e2e.test.js): installs Debian's
# chromium when missing (apt-get, idempotent; puppeteer never downloads a browser), npm ci (only
# when missing or out of date), runs the test (it starts its own redis-server and site on free
# ports) and prints node's summary lines. Screenshots: target/demo-screenshots/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PUPPETEER_SKIP_DOWNLOAD=1
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # A fresh Debian/Ubuntu machine: its nodejs (18+) and npm packages.
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  if command -v apt-get >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
  fi
  command -v node >/dev/null && command -v npm >/dev/null || { echo "demo-tests: Node.js 18+ and npm are required" >&2; exit 1; }
fi
if [ ! -x /usr/bin/chromium ]; then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ -f target/release/libsession_store.so ] || cargo build --release -p session-store
cd examples/demo
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
   ! cmp -s ../../clients/node/index.js node_modules/session-store-redis/index.js; then
  npm ci --no-audit --no-fund --loglevel=error
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
node --test test/e2e.test.js >"$log" 2>&1 || status=$?
grep -E '^not ok|^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms)' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "demo-tests: FAILED (full output follows)" >&2
  tail -n 200 "$log" >&2
fi
exit "$status"
