#!/usr/bin/env bash
# The Node package's tests (clients/node): npm ci (quick when node_modules is current), then
# node's test runner against servers the tests start themselves, a three-primary Redis Cluster
# included (test/cluster.test.js; needs the release module: cargo build --release -p
# session-store). Prints node's summary (tests/pass/fail lines).
set -euo pipefail
cd "$(dirname "$0")/../clients/node"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node-tests: node and npm are required" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
npm test --silent >"$log" 2>&1 || status=$?
grep -E '^not ok|^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms)' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "node-tests: FAILED (full output follows)" >&2
  tail -n 200 "$log" >&2
fi
exit "$status"
