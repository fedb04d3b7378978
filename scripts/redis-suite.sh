#!/usr/bin/env bash
# Redis's own test suite (Redis 7.0.15, the Debian source package) with and without the module.
#
#   bash scripts/redis-suite.sh [--fetch-only] [FILE ...]
#
# 1. Adds a `deb-src` entry for every configured Debian suite (idempotent: one generated file,
#    /etc/apt/sources.list.d/session-deb-src.{sources,list}, rewritten with the same content).
# 2. `apt-get source redis` into .tools/redis-src (skipped when already there).
# 3. Runs the unit files in external-server mode (`./runtest --host --port --singledb --single F`)
#    against a server WITHOUT the module, then against one WITH it (each on a free port), and
#    integration/replication in the suite's own mode, where it starts its own servers: through a
#    wrapper redis-server that adds `--loadmodule` (the suite runs src/redis-server of its tree).
# 4. The check: every test that passed without the module passes with it. Both summaries are
#    printed; the known external-mode skips are in docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.tools/redis-src
MODULE=${SESSION_MODULE:-$ROOT/target/release/libsession_store.so}
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server)}
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

fetch_only=0
if [ "${1:-}" = "--fetch-only" ]; then fetch_only=1; shift; fi

# ---- 1. deb-src entries --------------------------------------------------------------------
add_deb_src() {
  local out_sources=/etc/apt/sources.list.d/session-deb-src.sources
  local out_list=/etc/apt/sources.list.d/session-deb-src.list
  local tmp; tmp=$(mktemp)
  # deb822 files: every stanza of Types: deb on a Debian URI, as Types: deb-src.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    [ "$f" = "$out_sources" ] && continue
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)Types:[^\n]*deb([ \t\n]|$)/ && /(^|\n)URIs:[^\n]*debian/ && !/(^|\n)Types:[^\n]*deb-src/ {
           gsub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' "$f" >>"$tmp"
  done
  if [ -s "$tmp" ]; then
    if ! cmp -s "$tmp" "$out_sources" 2>/dev/null; then
      $sudo cp "$tmp" "$out_sources"; $sudo chmod 644 "$out_sources"; need_update=1
    fi
  fi
  # one-line format
  : >"$tmp"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    [ "$f" = "$out_list" ] && continue
    grep -E '^[[:space:]]*deb[[:space:]].*debian' "$f" | sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' >>"$tmp" || true
  done
  if [ -s "$tmp" ] && ! cmp -s "$tmp" "$out_list" 2>/dev/null; then
    $sudo cp "$tmp" "$out_list"; $sudo chmod 644 "$out_list"; need_update=1
  fi
  rm -f "$tmp"
}

fetch() {
  if [ -x "$CACHE/runtest" ]; then
    return
  fi
  need_update=0
  add_deb_src
  if [ "$need_update" = 1 ] || ! apt-cache showsrc redis >/dev/null 2>&1; then
    $sudo apt-get update -qq
  fi
  local work="$ROOT/.tools/redis-src.download"
  rm -rf "$work"; mkdir -p "$work"
  (cd "$work" && apt-get source -qq redis >/dev/null)
  local dir; dir=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'redis-*' | head -n1)
  [ -n "$dir" ] && [ -x "$dir/runtest" ] || { echo "redis-suite: no runtest in the source package" >&2; exit 1; }
  rm -rf "$CACHE"; mv "$dir" "$CACHE"; rm -rf "$work"
}

fetch
echo "redis-suite: source in $CACHE ($(sed -n 's/.*REDIS_VERSION "\(.*\)"/\1/p' "$CACHE/src/version.h"))"
[ "$fetch_only" = 1 ] && exit 0

# ---- 2. the runs ---------------------------------------------------------------------------
UNIT_FILES=(unit/dump unit/keyspace unit/expire unit/scan
  unit/type/string unit/type/incr unit/type/list unit/type/list-2 unit/type/list-3
  unit/type/set unit/type/zset unit/type/hash unit/type/stream unit/type/stream-cgroups
  unit/pubsub unit/multi unit/scripting unit/functions unit/info-command unit/introspection-2
  unit/other unit/latency-monitor unit/lazyfree)
OWN_MODE_FILES=(integration/replication)
if [ $# -gt 0 ]; then
  UNIT_FILES=(); OWN_MODE_FILES=()
  for f in "$@"; do
    case "$f" in unit/*) UNIT_FILES+=("$f") ;; *) OWN_MODE_FILES+=("$f") ;; esac
  done
fi

[ -f "$MODULE" ] || { echo "redis-suite: build the module first (make build)" >&2; exit 1; }
OUT=$ROOT/target/redis-suite
rm -rf "$OUT"; mkdir -p "$OUT"

# The suite runs src/redis-server (own mode) and src/redis-cli: a wrapper adds the module when
# SESSION_SUITE_MODULE is set, after the suite's config file (so it is the suite's config plus
# one `loadmodule` line, the module in its default configuration).
mkdir -p "$CACHE/src"
cat >"$CACHE/src/redis-server" <<WRAP
#!/bin/sh
if [ -n "\${SESSION_SUITE_MODULE:-}" ]; then
  exec "$REDIS_SERVER" "\$@" --loadmodule "\$SESSION_SUITE_MODULE"
fi
exec "$REDIS_SERVER" "\$@"
WRAP
chmod +x "$CACHE/src/redis-server"
for tool in redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
  bin=$(command -v "$tool" || true)
  [ -n "$bin" ] && ln -sf "$bin" "$CACHE/src/$tool"
done

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts a server (with the module when $1 = with) on a free port; sets SERVER_PID, SERVER_PORT.
start_external() {
  local with=$1 dir=$OUT/server-$1 args=()
  mkdir -p "$dir"
  [ "$with" = with ] && args=(--loadmodule "$MODULE")
  for _ in 1 2 3 4 5; do
    SERVER_PORT=$(free_port)
    "$REDIS_SERVER" --port "$SERVER_PORT" --bind 127.0.0.1 --dir "$dir" --save "" \
      --appendonly no --enable-debug-command yes "${args[@]}" >"$dir/redis.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
      if redis-cli -p "$SERVER_PORT" ping 2>/dev/null | grep -q PONG; then
        if [ "$(redis-cli -p "$SERVER_PORT" info server | tr -d '\r' | sed -n 's/^process_id://p')" = "$SERVER_PID" ]; then
          return 0
        fi
      fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true
  done
  echo "redis-suite: could not start redis-server" >&2; exit 1
}

stop_external() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# Runs the configured files once: $1 = without | with. Output in $OUT/$1.log.
run_suite() {
  local with=$1 log=$OUT/$1.log singles=()
  : >"$log"
  if [ ${#UNIT_FILES[@]} -gt 0 ]; then
    for f in "${UNIT_FILES[@]}"; do singles+=(--single "$f"); done
    start_external "$with"
    (cd "$CACHE" && ./runtest --host 127.0.0.1 --port "$SERVER_PORT" --durable --timeout 600 \
      --dump-logs "${singles[@]}") >>"$log" 2>&1 || true
    redis-cli -p "$SERVER_PORT" ping >/dev/null 2>&1 || echo "[err]: the external server died" >>"$log"
    stop_external
  fi
  if [ ${#OWN_MODE_FILES[@]} -gt 0 ]; then
    singles=()
    for f in "${OWN_MODE_FILES[@]}"; do singles+=(--single "$f"); done
    local module=""
    [ "$with" = with ] && module=$MODULE
    (cd "$CACHE" && SESSION_SUITE_MODULE=$module ./runtest --clients 1 --durable --timeout 600 \
      --baseport "$(( ($(free_port) % 20000) + 21000 ))" "${singles[@]}") >>"$log" 2>&1 || true
  fi
  sed -E 's/\x1b\[[0-9;]*m//g' "$log" >"$log.plain"
  grep -E '^\[ok\]: ' "$log.plain" | sed -E 's/^\[ok\]: //; s/ \([0-9]+ ms\)$//' | sort -u >"$OUT/$with.passed"
}

summary() {
  local plain=$OUT/$1.log.plain
  printf '%-8s ok %5d   err %3d   exception %3d   skip %4d\n' "$1" \
    "$(grep -c '^\[ok\]: ' "$plain" || true)" "$(grep -c '^\[err\]: ' "$plain" || true)" \
    "$(grep -c '^\[exception\]: ' "$plain" || true)" "$(grep -c '^\[skip\]: ' "$plain" || true)"
}

start=$SECONDS
echo "redis-suite: ${UNIT_FILES[*]} (external server) ${OWN_MODE_FILES[*]} (own servers)"
run_suite without
echo "redis-suite: without the module: $((SECONDS - start))s"
mid=$SECONDS
run_suite with
echo "redis-suite: with the module: $((SECONDS - mid))s"

echo "== summary (logs in $OUT)"
summary without
summary with
grep -E '^\[(err|exception)\]: ' "$OUT/without.log.plain" | sed 's/^/  without: /' || true
grep -E '^\[(err|exception)\]: ' "$OUT/with.log.plain" | sed 's/^/  with:    /' || true
comm -23 "$OUT/without.passed" "$OUT/with.passed" >"$OUT/regressions"
if [ -s "$OUT/regressions" ]; then
  echo "redis-suite: FAILED: passed without the module, not with it:"
  sed 's/^/  /' "$OUT/regressions"
  exit 1
fi
echo "redis-suite: every test that passes without the module passes with it ($(wc -l <"$OUT/without.passed") tests, $((SECONDS - start))s)"
