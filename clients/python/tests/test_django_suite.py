"""Django's own session backend tests (``SessionTestsMixin`` from Django's source distribution,
and ``SessionMiddlewareTests``, which run on the configured SESSION_ENGINE) against this engine,
on RESP3 and RESP2.

Skipped: nothing of the mixin (every test of it is applicable and must pass). Of the middleware
tests, two that use the database backend directly (see NEEDS_DB): test_session_update_error_redirect
(its view swaps in a DatabaseSession; the same scenario on this engine is in test_django_engine.py)
and test_empty_session_saved (reads the saved session through Session.objects).
"""

import unittest

import pytest
from django.test import SimpleTestCase, override_settings

import django_setup

if django_setup.SUITE is None:
    pytest.skip(django_setup.REASON, allow_module_level=True)

import sessions_tests.tests as django_tests  # noqa: E402

from session_store_redis.django import SessionStore  # noqa: E402


@pytest.fixture(autouse=True)
def _redis(django_redis):
    yield


class RedisModuleSessionTests(django_tests.SessionTestsMixin, SimpleTestCase):
    backend = SessionStore


@override_settings(SESSION_STORE_PROTOCOL=2)
class RedisModuleSessionResp2Tests(RedisModuleSessionTests):
    pass


NEEDS_DB = "uses the database backend directly, not SESSION_ENGINE: "


class RedisModuleSessionMiddlewareTests(django_tests.SessionMiddlewareTests):
    """Django's middleware tests; SESSION_ENGINE is this engine (tests/django_setup.py)."""

    @unittest.skip(NEEDS_DB + "its view saves a DatabaseSession (test_django_engine.py covers it)")
    def test_session_update_error_redirect(self):
        pass

    @unittest.skip(NEEDS_DB + "it reads the saved session through Session.objects")
    def test_empty_session_saved(self):
        pass
