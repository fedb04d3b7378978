"""Django for the tests: settings, and Django's own session tests from its source distribution.

Django's sdist (of the installed version) is downloaded once into clients/python/.cache with
``pip download --no-binary :all: --no-deps`` and its ``tests/sessions_tests`` extracted there; a
cache that is present is used as it is. When neither is possible (no network), SUITE is None and
the suite's tests are skipped with that reason.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import django
from django.conf import settings

CACHE = Path(__file__).resolve().parents[1] / ".cache"
VERSION = django.get_version()
SUITE_ROOT = CACHE / f"django-{VERSION}" / "tests"
REASON = ""


def fetch_suite() -> Path | None:
    """The folder holding Django's ``sessions_tests`` package, fetching it when missing."""
    global REASON
    if (SUITE_ROOT / "sessions_tests" / "tests.py").is_file():
        return SUITE_ROOT
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"django-{VERSION}.tar.gz"
    if not sdist.is_file():
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"django=={VERSION}",
                "-d",
                str(CACHE),
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0 or not sdist.is_file():
            REASON = f"Django {VERSION} sdist could not be downloaded: {out.stderr.strip()[-300:]}"
            return None
    prefix = f"django-{VERSION}/tests/sessions_tests/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
        for m in members:
            # extracted under its own name (django-X/tests/sessions_tests/...) into the cache,
            # which is SUITE_ROOT/sessions_tests/...
            tar.extract(m, CACHE)
    return SUITE_ROOT


SUITE = fetch_suite()


def configure() -> None:
    if settings.configured:
        return
    apps = [
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.sessions",
    ]
    if SUITE is not None:
        sys.path.insert(0, str(SUITE))
        apps.append("sessions_tests")
    settings.configure(
        SECRET_KEY="session-store-tests",
        INSTALLED_APPS=apps,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SESSION_ENGINE="session_store_redis.django",
        SESSION_STORE_URL="redis://127.0.0.1:1",  # replaced by the django_redis fixture
        USE_TZ=True,
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
    )
    django.setup()


urlpatterns: list = []
