#!/usr/bin/env bash
# Runs the client examples (Python, Node.js, Rust, Django) against a redis-server of its own with the
# session module loaded, and prints one PASS/FAIL line per example. Exits non-zero if any failed.
#
#   bash examples/check.sh                 # all four
#   bash examples/check.sh python rust     # some of them
#
# It builds the module (cargo build --release -p session-store; quick when up to date), starts
# redis-server on a free loopback port in a temporary directory (stopped on exit, even on
# failure), and installs what each example needs into the example's own folder, only when
# missing or when its lock file changed: python/.deps (pip --target), node/node_modules (npm ci),
# rust/target (cargo build --locked), django/.deps (pip --target: django/requirements.txt and the
# package in clients/python, reinstalled when its sources change). Each example runs twice: over
# RESP3 and over RESP2.
#
# Environment: REDIS_SERVER (default: redis-server on PATH), SESSION_MODULE (a prebuilt .so: skips
# the module build), VERBOSE=1 (print every example's output, not only a failing one's).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
all=(python node rust django)
selected=("${@:-${all[@]}}")
for name in "${selected[@]}"; do
  case " ${all[*]} " in *" $name "*) ;; *) echo "check.sh: unknown example '$name' (one of: ${all[*]})" >&2; exit 2 ;; esac
done

exec 3>&1 # progress lines go to the terminal even where an example's output goes to its log
log() { echo "check.sh: $*" >&3; }
die() { echo "check.sh: $*" >&2; exit 1; }

# --- The server -----------------------------------------------------------------------------
if [ -z "${REDIS_SERVER:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  bash "$root/scripts/install-deps.sh" || die "redis-server is missing and scripts/install-deps.sh failed"
fi
server="${REDIS_SERVER:-redis-server}"
command -v "$server" >/dev/null 2>&1 || die "no redis-server ($server)"

if [ -n "${SESSION_MODULE:-}" ]; then
  module="$SESSION_MODULE"
else
  log "building the module (cargo build --release -p session-store)"
  (cd "$root" && cargo build --release --quiet -p session-store) || die "the module does not build"
  target_dir="${CARGO_TARGET_DIR:-$root/target}"
  case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
  module="$target_dir/release/libsession_store.so"
fi
[ -f "$module" ] || die "module not found: $module"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/session-examples.XXXXXX")"
server_pid=""
step_pid=""
cleanup() {
  if [ -n "$step_pid" ]; then
    kill -- "-$step_pid" 2>/dev/null || kill "$step_pid" 2>/dev/null
    wait "$step_pid" 2>/dev/null
  fi
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port: ask the kernel for one, then start the server on it; try again if another
# process took it in between.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ping() {
  python3 - "$1" <<'EOF'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
EOF
}
for attempt in 1 2 3 4 5; do
  port="$(free_port)" || die "python3 is needed to find a free port"
  "$server" --port "$port" --bind 127.0.0.1 --dir "$tmp" --save "" --appendonly no \
    --daemonize no --logfile "$tmp/redis.log" --loadmodule "$module" &
  server_pid=$!
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    if ping "$port"; then break 2; fi
    sleep 0.05
  done
  wait "$server_pid" 2>/dev/null
  server_pid=""
  [ "$attempt" -lt 5 ] || { cat "$tmp/redis.log" >&2; die "redis-server did not start"; }
done
export REDIS_URL="redis://127.0.0.1:$port"
log "redis-server $("$server" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') with the module on $REDIS_URL"

# --- Installing, idempotently: each install is skipped while its stamp matches its lock file.
fresh() { [ -f "$2" ] && cmp -s "$1" "$2"; }

install_python() {
  local dir="$here/python"
  fresh "$dir/requirements.txt" "$dir/.deps/.installed" && return 0
  log "python: pip install -r requirements.txt --target python/.deps"
  rm -rf "$dir/.deps"
  python3 -m pip install --quiet --disable-pip-version-check --no-input \
    --target "$dir/.deps" -r "$dir/requirements.txt" &&
    cp "$dir/requirements.txt" "$dir/.deps/.installed"
}
run_python() {
  PYTHONPATH="$here/python/.deps" timeout --foreground 120 python3 "$here/python/session_demo.py"
}

# The Django example: the site in examples/django (the session engine and middleware of
# clients/python) driven by its check script through Django's test client: log in, page views,
# surfacing, a notification, log out everywhere.
django_stamp() {
  cat "$here/django/requirements.txt"
  (cd "$root/clients/python" && find pyproject.toml src -type f ! -name '*.pyc' | LC_ALL=C sort |
    xargs cksum)
}
install_django() {
  local dir="$here/django"
  django_stamp >"$tmp/django.stamp"
  fresh "$tmp/django.stamp" "$dir/.deps/.installed" && return 0
  log "django: pip install -r requirements.txt ../clients/python --target django/.deps"
  rm -rf "$dir/.deps"
  python3 -m pip install --quiet --disable-pip-version-check --no-input \
    --target "$dir/.deps" -r "$dir/requirements.txt" "$root/clients/python" &&
    cp "$tmp/django.stamp" "$dir/.deps/.installed"
}
run_django() {
  PYTHONPATH="$here/django/.deps" timeout --foreground 120 python3 "$here/django/check_demo.py"
}

install_node() {
  local dir="$here/node"
  fresh "$dir/package-lock.json" "$dir/node_modules/.installed" && return 0
  log "node: npm ci"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) &&
    cp "$dir/package-lock.json" "$dir/node_modules/.installed"
}
run_node() {
  timeout --foreground 120 node "$here/node/session_demo.mjs"
}

install_rust() {
  # Cargo decides what is stale; an up-to-date build takes a fraction of a second.
  (cd "$here/rust" && cargo build --locked --quiet)
}
run_rust() {
  local target="${CARGO_TARGET_DIR:-$here/rust/target}"
  case "$target" in /*) ;; *) target="$here/rust/$target" ;; esac
  timeout --foreground 120 "$target/debug/session-demo"
}

# --- Running ---------------------------------------------------------------------------------
# Each step runs in the background, in a process group of its own (set -m), while the script
# waits for it: a signal then stops the whole step and the server at once (bash runs traps only
# between foreground commands). Hence `timeout --foreground`: it stays in the step's group.
step() {
  set -m
  "$@" &
  step_pid=$!
  set +m
  wait "$step_pid"
  local rc=$?
  step_pid=""
  return "$rc"
}

failed=0
summary=()
for name in "${selected[@]}"; do
  out="$tmp/$name.log"
  start=$SECONDS
  status="PASS"
  detail="RESP3 + RESP2"
  if ! step "install_$name" >"$out" 2>&1; then
    status="FAIL"
    detail="install failed"
  else
    for protocol in 3 2; do
      echo "--- RESP$protocol" >>"$out"
      if ! REDIS_PROTOCOL=$protocol step "run_$name" >>"$out" 2>&1; then
        status="FAIL"
        detail="RESP$protocol run failed"
        break
      fi
    done
  fi
  if [ "$status" = FAIL ] || [ "${VERBOSE:-0}" = 1 ]; then
    sed "s/^/  $name | /" "$out"
  fi
  [ "$status" = PASS ] || failed=1
  summary+=("$(printf '%s %-7s %-16s %3ss' "$status" "$name" "($detail)" "$((SECONDS - start))")")
done

printf '%s\n' "${summary[@]}"
exit "$failed"
