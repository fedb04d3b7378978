"""A 3-primary cluster on loopback (started by the `cluster` fixture): keyed commands route by
the module's key specs, a registry command sent to one primary reaches every primary (the module
sends it over the cluster bus), and the paged user index is merged from every primary."""

import time

import pytest
import redis
import redis.asyncio.cluster as aiocluster
from redis.cluster import ClusterNode, LoadBalancingStrategy, RedisCluster

from session_store_redis import session_commands
from session_store_redis.types import parse_scored, parse_stats

from servers import wait_for


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


def _key_per_primary(rc, prefix):
    """{primary name: a key of its slots}."""
    out = {}
    for i in range(1000):
        k = f"{prefix}:{i}"
        out.setdefault(rc.get_node_from_key(k).name, k)
        if len(out) == 3:
            return out
    raise AssertionError("no key on some primary")


def test_trending_and_stats_merged(rc, name):
    """Each primary counts the events of its own slots; the helpers ask every primary and merge.
    `w` is second on every primary and first overall: a merge of each primary's top-1 misses it,
    a merge that does not sum (max, first primary) ranks it wrong, and the STATS sums are checked
    against the per-node replies added up here."""
    s = session_commands(rc)
    cat = f"{name}:cat"
    w, x, y, z = (f"{name}:{c}".encode() for c in "wxyz")
    for item in (w, x, y, z):
        s.catalog_add(cat, item, score=1, categories=["c"])
    _converged(rc)
    keys = _key_per_primary(rc, f"{name}:s")
    now = int(time.time() * 1000)
    primaries = rc.get_primaries()
    for node, own in zip(primaries, (x, y, z), strict=True):
        key = keys[node.name]
        for _ in range(3):
            s.touch(key, event=own, at=now)
        for _ in range(2):
            s.touch(key, event=w, at=now)

    def per_node(node, count):
        reply = rc.execute_command(
            "SESSION.TRENDING", cat, "COUNT", count, "WITHSCORES", "AT", now, target_nodes=node
        )
        return parse_scored(reply)

    tops = [per_node(node, 1) for node in primaries]
    assert sorted(t[0][0] for t in tops) == [x, y, z]  # w is nowhere first
    assert s.trending(cat, count=1, at=now) == [w]
    summed: dict = {}
    for node in primaries:
        for item, score in per_node(node, 10):
            summed[item] = summed.get(item, 0.0) + score
    want = sorted(summed.items(), key=lambda kv: (-kv[1], kv[0]))
    got = s.trending(cat, count=4, withscores=True, at=now)
    assert [i for i, _ in got] == [i for i, _ in want]
    assert got[0][0] == w and sorted(i for i, _ in got[1:]) == [x, y, z]
    for (_, g), (_, e) in zip(got, want, strict=True):
        assert g == pytest.approx(e)
    assert got[0][1] == pytest.approx(6.0) and got[1][1] == pytest.approx(3.0)
    assert s.trending(cat, count=2)[0] == w  # now: every primary decays to one AT
    assert s.trending(cat, category="none") == []

    raw = {
        node.name: parse_stats(rc.execute_command("SESSION.STATS", "AT", now, target_nodes=node))
        for node in primaries
    }
    assert all(st.views_per_minute[-1] >= 5 for st in raw.values())  # every primary counted
    merged = s.stats(at=now)
    assert merged.events == sum(st.events for st in raw.values())
    assert merged.active == sum(st.active for st in raw.values())
    assert merged.views_per_minute == [
        sum(st.views_per_minute[i] for st in raw.values()) for i in range(60)
    ]
    assert merged.trending_tracked == max(st.trending_tracked for st in raw.values())
    assert merged.trend_top_k == 1000 and merged.active_window_minutes == 5
    assert merged.nodes == raw
    assert s.stats().events >= merged.events
    s.catalog_drop(cat)


def test_read_state_and_groups(rc, name):
    """ACK/UNREAD on sessions of every primary; GROUP sent to one primary reaches all."""
    s = session_commands(rc)
    group = f"{name}:g"
    keys = _key_per_primary(rc, f"{name}:s")
    for k in keys.values():
        s.touch(k)
        s.enrich(k, join=[group])
    assert s.notifygroup(group, "n1", "a") is True
    assert s.notifygroup(group, "n2", "b") is True
    _converged(rc)
    for k in keys.values():
        assert [(n.id, n.delivered) for n in s.inbox(k, unread=True)] == [
            (b"n1", False),
            (b"n2", False),
        ]
        assert len(s.inbox(k, count=1)) == 1
        assert s.ack(k, group, upto="n2") == 1
        assert [(n.id, n.delivered) for n in s.inbox(k, unread=True)] == [(b"n2", False)]
    assert group.encode() in s.group_list()
    assert s.group_info(group).notifications == 2
    assert s.group_drop(group) is True
    _converged(rc)
    for node in rc.get_primaries():
        listed = rc.execute_command("SESSION.GROUP", "LIST", target_nodes=node)
        assert group.encode() not in listed
    with pytest.raises(redis.ResponseError, match="no such group"):
        s.group_info(group)


def test_surface_ro_goes_to_the_primary(rc, name):
    """Without replica reads SURFACE_RO goes to the key's primary (no replicas here)."""
    s = session_commands(rc)
    cat = f"{name}:cat"
    s.catalog_add(cat, "a", score=2)
    s.catalog_add(cat, "b", score=1)
    _converged(rc)
    for k in _key_per_primary(rc, f"{name}:s").values():
        s.touch(k, event="a")
        assert s._read_target(k) == {}
        assert s.surface_ro(k, cat, max_impressions=1) == [b"b"]
        assert s.surface_ro(k, cat, max_impressions=1) == [b"b"]
    s.catalog_drop(cat)


def _surface_ro_calls(port):
    with redis.Redis(host="127.0.0.1", port=port) as r:
        stats = r.info("commandstats").get("cmdstat_session.surface_ro", {})
        return stats.get("calls", 0)


@pytest.mark.parametrize("strategy", [None, LoadBalancingStrategy.RANDOM_REPLICA])
def test_surface_ro_reads_a_replica_only_when_configured(cluster_with_replica, name, strategy):
    """With a replica-read strategy SURFACE_RO runs on the slot's replica (its READONLY
    connection: no MOVED), counted in the replica's commandstats; without, on the primary."""
    c = cluster_with_replica
    rc = RedisCluster(startup_nodes=_nodes(c), load_balancing_strategy=strategy)
    try:
        s = session_commands(rc)
        primary, replica = c.nodes[0], c.replica
        key = next(
            k
            for k in (f"{name}:s{i}" for i in range(1000))
            if rc.get_node_from_key(k).port == primary.port
        )
        cat = f"{name}:cat"
        s.catalog_add(cat, "a", score=2)
        s.catalog_add(cat, "b", score=1)
        s.touch(key, event="a")
        with redis.Redis(host="127.0.0.1", port=replica.port) as rr:
            wait_for(
                lambda: (
                    rr.execute_command("READONLY")
                    and rr.exists(key)
                    and rr.execute_command("SESSION.CATALOG", "INFO", cat) is not None
                ),
                "the replica has the session and the catalog",
            )
        before = (_surface_ro_calls(primary.port), _surface_ro_calls(replica.port))
        assert s.surface_ro(key, cat) == [b"b"]
        after = (_surface_ro_calls(primary.port), _surface_ro_calls(replica.port))
        if strategy is None:
            assert after == (before[0] + 1, before[1])
        else:
            assert after == (before[0], before[1] + 1)
    finally:
        rc.close()


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
        await s.touch(keys[0], event="x")
        assert b"x" in await s.trending(cat, count=5)
        stats = await s.stats()
        assert len(stats.nodes) == 3
        assert stats.events == sum(st.events for st in stats.nodes.values())
        assert await s.sessions(user) == sorted(k.encode() for k in keys)
        assert await s.revoke(user) == len(keys)
        assert await s.catalog_drop(cat) is True
    finally:
        await rc.aclose()
