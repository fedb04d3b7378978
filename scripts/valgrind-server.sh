#!/usr/bin/env bash
# A server binary for the test harness (REDIS_SERVER) that runs the real server under valgrind:
# scripts/leaks.sh points REDIS_SERVER here. Each server process writes its own log,
# $VALGRIND_LOG_DIR/vg.<pid>.log; the forked children that write RDB/AOF files stay silent.
#
# Environment: VALGRIND_SERVER (the real server binary), VALGRIND_LOG_DIR (where logs go).
set -euo pipefail
: "${VALGRIND_SERVER:?set VALGRIND_SERVER to the real server binary}"
: "${VALGRIND_LOG_DIR:?set VALGRIND_LOG_DIR to a directory for the logs}"
exec valgrind \
  --suppressions="$(dirname "$0")/valgrind.sup" \
  --leak-check=full \
  --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect \
  --child-silent-after-fork=yes \
  --num-callers=40 \
  --log-file="$VALGRIND_LOG_DIR/vg.%p.log" \
  "$VALGRIND_SERVER" "$@"
