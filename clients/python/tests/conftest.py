"""Fixtures: a redis-server with the module for the whole run, a 3-primary cluster for the cluster
tests, and clients on RESP2 and RESP3. Every server is stopped when the run ends, pass or fail.
"""

from __future__ import annotations

import os
import sys
import uuid

import pytest
import redis

sys.path.insert(0, os.path.dirname(__file__))

import django_setup  # noqa: E402
from servers import Cluster, Server  # noqa: E402

django_setup.configure()


@pytest.fixture(scope="session")
def server():
    srv = Server()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def cluster():
    try:
        c = Cluster()
    except (RuntimeError, TimeoutError, OSError) as err:
        pytest.skip(f"a cluster could not start: {err}")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def cluster_with_replica():
    """Three primaries and one replica of the first (only for the tests that read replicas)."""
    try:
        c = Cluster()
        c.replica = c.add_replica(0)
    except (RuntimeError, TimeoutError, OSError) as err:
        pytest.skip(f"a cluster with a replica could not start: {err}")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


@pytest.fixture
def r(server, protocol):
    client = redis.Redis(host="127.0.0.1", port=server.port, protocol=protocol)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def rd(server, protocol):
    """A client with decode_responses=True (str instead of bytes)."""
    client = redis.Redis(
        host="127.0.0.1", port=server.port, protocol=protocol, decode_responses=True
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def name():
    """A unique name prefix per test, so tests never see each other's keys or catalogs."""
    return f"t:{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def django_redis(server):
    """Points the Django engine at the test server."""
    from django.conf import settings

    settings.SESSION_STORE_URL = server.url
    yield server
