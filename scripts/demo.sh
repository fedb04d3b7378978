#!/usr/bin/env bash
# `make demo`: builds the module, starts redis-server with it (the repository's redis.conf when
# port 6379 is free, else a free port with a temporary directory), installs the demo's npm
# dependencies (npm ci, only when missing or out of date), starts the demo shop
# (examples/demo/server.js) and prints its URL. Ctrl-C stops the site and the server it started.
# DEMO_PORT (default 3000; a port in use falls back to a free one), REDIS_SERVER (another server).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SERVER=${REDIS_SERVER:-redis-server}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # A fresh Debian/Ubuntu machine: its nodejs (18+) and npm packages.
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  if command -v apt-get >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
  fi
  command -v node >/dev/null && command -v npm >/dev/null || { echo "demo: Node.js 18+ and npm are required" >&2; exit 1; }
fi
command -v "$SERVER" >/dev/null || bash scripts/install-deps.sh
cargo build --release -p session-store

in_use () { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port () { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

tmp=
redis_pid=
cleanup () {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! in_use 6379; then
  port=6379
  "$SERVER" ./redis.conf &
else
  port=$(free_port)
  tmp=$(mktemp -d)
  echo "demo: port 6379 is in use; starting redis-server on port $port (data in $tmp)"
  # redis.conf's settings with an absolute module path (--dir would break its relative one)
  "$SERVER" --port "$port" --bind 127.0.0.1 --dir "$tmp" --save '' --notify-keyspace-events Kd \
    --loadmodule "$ROOT/target/release/libsession_store.so" &
fi
redis_pid=$!
for _ in $(seq 1 200); do
  if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then break; fi
  kill -0 "$redis_pid" 2>/dev/null || { echo "demo: redis-server did not start" >&2; exit 1; }
  sleep 0.1
done
[ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] || { echo "demo: redis-server did not answer on port $port" >&2; exit 1; }

cd examples/demo
# npm ci when node_modules is missing, older than the lock file, or holds an older copy of
# clients/node (the package is installed as a copy: .npmrc install-links).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
   ! cmp -s ../../clients/node/index.js node_modules/session-store-redis/index.js; then
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
echo "demo: redis-server with the session module on port $port; Ctrl-C stops the site and the server"
REDIS_URL="redis://127.0.0.1:$port" PORT="${DEMO_PORT:-3000}" node server.js
