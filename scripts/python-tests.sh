#!/usr/bin/env bash
# The Python package's tests: clients/python (session_store_redis) against real redis-server
# processes the tests start themselves (one server, and a 3-primary cluster), on RESP2 and RESP3,
# plus Django's own session tests (SessionTestsMixin, from Django's sdist, cached in
# clients/python/.cache) run against the Django engine. Then ruff (lint and format check).
#
#   bash scripts/python-tests.sh [pytest args]
#
# Idempotent: the venv clients/python/.venv is created once; the package and the test deps are
# installed when missing or when pyproject.toml changed (a stamp in the venv), so a second run
# goes straight to pytest. Environment: SESSION_MODULE (default target/release/libsession_store.so:
# build it first), REDIS_SERVER (default redis-server on PATH), PYTHON (default python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/clients/python"
venv="$pkg/.venv"
py="${PYTHON:-python3}"

if [ -z "${SESSION_MODULE:-}" ] && [ ! -f "$root/target/release/libsession_store.so" ]; then
  echo "python-tests.sh: build the module first (cargo build --release -p session-store) or set SESSION_MODULE" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "python-tests.sh: creating $venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.installed"
if ! cmp -s "$pkg/pyproject.toml" "$stamp"; then
  echo "python-tests.sh: pip install ./clients/python[test]"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "$pkg[test]"
  cp "$pkg/pyproject.toml" "$stamp"
else
  # The package itself may have changed since: reinstall it alone, without its dependencies.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --no-deps --force-reinstall "$pkg"
fi

cd "$pkg"
"$venv/bin/ruff" check --quiet src tests
"$venv/bin/ruff" format --check --quiet src tests
# -p no:cacheprovider: no .pytest_cache in the tree; -rs lists every skipped test with its reason.
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q -rs "$@"
