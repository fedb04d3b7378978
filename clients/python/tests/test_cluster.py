"""A 3-primary cluster on loopback (started by the `cluster` fixture): keyed commands route by
the module's key specs, a registry command sent to one primary reaches every primary (the module
sends it over the cluster bus), and the paged user index is merged from every primary."""

import time

import pytest
import redis.asyncio.cluster as aiocluster
from redis.cluster import ClusterNode, RedisCluster

from session_store_redis import session_commands


def _nodes(cluster):
    return [ClusterNode(h, p) for h, p in cluster.startup_nodes]


@pytest.fixture
def rc(cluster, protocol):
    client = RedisCluster(startup_nodes=_nodes(cluster), protocol=protocol)
    try:
        yield client
    finally:
        client.close()


def _keys_on_every_primary(rc, prefix, n=30):
    """Keys spread over the slots: at least one on each primary."""
    keys = [f"{prefix}:{i}" for i in range(n)]
    owners = {rc.get_node_from_key(k).name for k in keys}
    assert len(owners) == len(rc.get_primaries()) == 3
    return keys


def test_keyed_commands_route(rc, name):
    s = session_commands(rc)
    keys = _keys_on_every_primary(rc, f"{name}:s")
    for k in keys:
        t = s.touch(k, fields={"k": k}, event="e", categories=["c"])
        assert t.new
    for k in keys:
        assert s.get(k) == {b"k": k.encode()}
        assert s.seen(k, "e", "f") == [True, False]
        view = s.page_view(k, event="f")  # MULTI on the key's node
        assert view.touch.events == 2 and view.fields == {b"k": k.encode()}
    # ROTATE within one slot (hash tag)
    a, b = f"{{{name}}}:a", f"{{{name}}}:b"
    s.touch(a, event="x")
    assert s.rotate(a, b) is True
    assert s.touch(b).events == 1


def _converged(rc):
    """Waits until every primary announces the same registry digest (the module sends registry
    changes over the cluster bus)."""
    deadline = time.monotonic() + 30
    while True:
        digests = {
            str(
                rc.execute_command("INFO", "session", target_nodes=n).get("session_registry_digest")
            )
            for n in rc.get_primaries()
        }
        if len(digests) == 1 and "None" not in digests:
            return
        assert time.monotonic() < deadline, f"the registry did not converge: {digests}"
        time.sleep(0.05)


def test_registry_reaches_every_primary(rc, name):
    s = session_commands(rc)
    cat, group = f"{name}:cat", f"{name}:g"
    keys = _keys_on_every_primary(rc, f"{name}:s")
    assert s.catalog_add(cat, "a:1", score=2, categories=["c"]) is True
    assert s.catalog_add(cat, "a:2", score=1, categories=["c"]) is True
    _converged(rc)
    for node in rc.get_primaries():  # each primary has the catalog
        info = rc.execute_command("SESSION.CATALOG", "INFO", cat, target_nodes=node)
        assert info is not None
    assert s.catalog_list().count(cat.encode()) == 1
    for k in keys:  # surfacing works for sessions on every node
        s.touch(k, event="a:1")
        assert s.surface(k, cat, count=5) == [b"a:2"]
        s.enrich(k, join=[group])
    assert s.notifygroup(group, "n1", "hello") is True
    assert s.notifygroup(group, "n1", "hello") is False
    _converged(rc)
    for k in keys:
        (n,) = s.inbox(k)
        assert n.payload == b"hello"
    assert s.catalog_del(cat, "a:1") == 1
    assert s.catalog_drop(cat) is True
    assert cat.encode() not in s.catalog_list()


def test_user_index_merged(rc, name):
    s = session_commands(rc)
    user = f"{name}:alice"
    keys = _keys_on_every_primary(rc, f"{name}:s", n=12)
    for k in keys:
        s.touch(k, user=user)
    assert s.sessions(user) == sorted(k.encode() for k in keys)
    assert s.revoke(user) == len(keys)
    assert s.sessions(user) == []


async def test_async_cluster(cluster, protocol, name):
    rc = aiocluster.RedisCluster(
        startup_nodes=[aiocluster.ClusterNode(h, p) for h, p in cluster.startup_nodes],
        protocol=protocol,
    )
    try:
        s = session_commands(rc)
        user, cat = f"{name}:u", f"{name}:cat"
        keys = [f"{name}:s:{i}" for i in range(12)]
        for k in keys:
            assert (await s.touch(k, user=user, event="e")).new
            view = await s.page_view(k, event="f")
            assert view.touch.events == 2
        assert await s.catalog_add(cat, "x", score=1) is True
        assert cat.encode() in await s.catalog_list()
        assert await s.sessions(user) == sorted(k.encode() for k in keys)
        assert await s.revoke(user) == len(keys)
        assert await s.catalog_drop(cat) is True
    finally:
        await rc.aclose()
