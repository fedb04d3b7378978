"""Every SESSION command through session_commands(), on RESP2 and RESP3 (the `protocol`
fixture), with bytes (default) and str (decode_responses) clients: the same Python values."""

import time

import pytest
import redis

from session_store_redis import (
    CatalogInfo,
    GroupInfo,
    Notification,
    PageView,
    Stats,
    Touch,
    session_commands,
)


def test_touch_get_seen(r, name):
    s = session_commands(r)
    key = f"{name}:s"
    t = s.touch(
        key,
        idle=600,
        maxage=3600,
        user="alice",
        fields={"theme": "dark", "n": 3},
        event="p:1",
        categories=["golf", "news"],
    )
    assert isinstance(t, Touch)
    assert (t.new, t.events, t.unique, t.seen_before, t.idle_ms, t.pending) == (
        True,
        1,
        1,
        False,
        0,
        0,
    )
    assert 0 < t.ttl_ms <= 600_000
    t = s.touch(key, event="p:1", delete=["n"])
    assert (t.new, t.events, t.seen_before) == (False, 2, True)
    assert s.get(key) == {b"theme": b"dark"}
    assert s.get(key, "theme", "missing") == [b"dark", None]
    assert s.seen(key, "p:1", "p:2") == [True, False]
    assert s.touch(f"{name}:nobody", xx=True) is None
    assert r.exists(f"{name}:nobody") == 0
    assert s.get(f"{name}:nobody") is None
    assert s.get(f"{name}:nobody", "a") is None


def test_binary_safe(r, name):
    s = session_commands(r)
    key = f"{name}:\xff".encode("latin-1") + b"\x00bin"
    value = bytes(range(256))
    s.touch(key, fields={b"\xfe\x00name": value}, event=b"\x80item")
    assert s.get(key) == {b"\xfe\x00name": value}
    assert s.get(key, b"\xfe\x00name") == [value]
    assert s.seen(key, b"\x80item") == [True]
    doc = s.info(key)
    assert doc["fields"]  # non-UTF-8 names/values come as base64 in the JSON


def test_decode_responses(rd, name):
    s = session_commands(rd)
    key = f"{name}:s"
    s.touch(key, fields={"a": "b"})
    assert s.get(key) == {"a": "b"}
    assert s.get(key, "a") == ["b"]
    view = s.page_view(key, event="x")
    assert view.fields == {"a": "b"} and view.touch.events == 1


def test_page_view_one_round_trip(r, name):
    s = session_commands(r)
    key = f"{name}:s"
    assert s.page_view(key, event="a") == PageView(None, None)  # xx: nothing created
    assert r.exists(key) == 0
    s.touch(key, fields={"u": "1", "v": "2"})
    view = s.page_view(key, event="a", categories=["c"])
    assert view.touch.events == 1 and view.touch.unique == 1
    assert view.fields == {b"u": b"1", b"v": b"2"}
    view = s.page_view(key, event="a", fields=["v", "missing"])
    assert view.touch.seen_before and view.fields == {"v": b"2"}
    assert "fields" not in view.touch.extra
    # one command: no MULTI, no GET
    before = r.info("commandstats")
    s.page_view(key, event="b")
    after = r.info("commandstats")
    diff = {
        k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"]
        for k in after
        if after[k]["calls"] != before.get(k, {"calls": 0})["calls"]
    }
    diff.pop("cmdstat_info", None)
    assert diff == {"cmdstat_session.touch": 1}


def test_enrich_and_info(r, name):
    s = session_commands(r)
    key = f"{name}:s"
    s.touch(key, event="a", categories=["hockey"])
    doc = s.enrich(key, attrs={"geo": {"country": "SE"}}, join=[f"{name}:g"])
    assert doc["attrs"] == {"geo": {"country": "SE"}}
    assert doc["groups"] == [f"{name}:g"]
    assert doc["interests"][0]["category"] == "hockey"
    doc = s.enrich(key, attrs='{"geo": null}', leave=[f"{name}:g"])
    assert doc["attrs"] == {} and doc["groups"] == []
    assert s.enrich(f"{name}:missing") is None
    info = s.info(key)
    assert info["activity"]["events"] == 1 and info["calculated"]["attrs"] == {}
    assert s.info(f"{name}:missing") is None
    with pytest.raises(redis.ResponseError, match="ATTRS is not valid JSON"):
        s.enrich(key, attrs="{nope")


def test_catalog_surface_impress(r, name):
    s = session_commands(r)
    key, cat = f"{name}:s", f"{name}:articles"
    s.touch(key, event="a:1", categories=["hockey"])
    assert s.catalog_add(cat, "a:1", score=5, categories=["hockey"]) is True
    assert s.catalog_add(cat, "a:2", score=3, categories=["hockey"], ttl=3600) is True
    assert s.catalog_add(cat, "a:3", score=1, categories=["golf"]) is True
    assert s.catalog_add(cat, "a:3", score=2, categories=["golf"]) is False
    info = s.catalog_info(cat)
    assert isinstance(info, CatalogInfo) and (info.items, info.categories) == (3, 2)
    assert info.memory > 0
    assert cat.encode() in s.catalog_list()
    picks = s.surface(key, cat, count=5, withscores=True, nomark=True)
    assert [i for i, _ in picks] == [b"a:2", b"a:3"]  # a:1 was seen
    assert all(isinstance(score, float) for _, score in picks) and picks[0][1] > picks[1][1]
    assert s.surface(key, cat, count=1) == [b"a:2"]
    assert s.surface(key, items=["a:1", "a:3", "zz"]) == [b"a:3", b"zz"]
    assert s.surface(f"{name}:cold", cat, count=2) == [b"a:1", b"a:2"]  # cold start
    assert s.impress(key, ["a:3", "a:9"]) == 2
    assert s.impress(f"{name}:missing", ["a:3"]) == 0
    assert s.surface(key, cat, category="golf", max_impressions=2) == []  # a:3 shown twice
    assert s.catalog_del(cat, "a:3", "nope") == 1
    assert s.catalog_drop(cat) is True
    assert s.catalog_drop(cat) is False
    with pytest.raises(redis.ResponseError, match="no such catalog"):
        s.surface(key, cat)
    with pytest.raises(ValueError):
        s.surface(key)


def test_notify_inbox(r, name):
    s = session_commands(r)
    key, group = f"{name}:s", f"{name}:beta"
    s.touch(key)
    s.enrich(key, join=[group])
    assert s.notifygroup(group, "n1", b"\xffpayload", ttl=300) is True
    assert s.notifygroup(group, "n1", "again") is False
    assert s.touch(key).pending == 1
    assert s.inbox(key, peek=True)[0].id == b"n1"
    (n,) = s.inbox(key)
    assert isinstance(n, Notification)
    assert (n.group, n.id, n.payload) == (group.encode(), b"n1", b"\xffpayload")
    assert n.published_ms > 0
    assert s.inbox(key) == []
    assert s.inbox(f"{name}:missing") == []


def test_notify_joined_window(r, name):
    s = session_commands(r)
    a, b, group = f"{name}:a", f"{name}:b", f"{name}:g"
    t = int(time.time() * 1000)
    s.touch(a)
    s.touch(b)
    s.enrich(a, join=[group], at=t)  # joined at t
    s.enrich(b, join=[group], at=t + 2000)  # joined at t + 2 s
    # only members who joined before the publication (at t + 1 s), then only after t + 1.5 s
    assert s.notifygroup(group, "old", "1", at=t + 1000, joined_before="now") is True
    assert s.notifygroup(group, "new", "2", at=t + 1000, joined_after=t + 1500) is True
    assert [n.id for n in s.inbox(a)] == [b"old"]
    assert [n.id for n in s.inbox(b)] == [b"new"]
    with pytest.raises(redis.ResponseError):
        s.notifygroup(group, "none", "3", joined_before=t, joined_after=t)


def test_users_rotate(r, name):
    s = session_commands(r)
    user = f"{name}:alice"
    a, b, c = f"{name}:a", f"{name}:b", f"{name}:c"
    s.touch(a, user=user, event="x")
    s.touch(b, user=user)
    assert s.sessions(user) == [a.encode(), b.encode()]
    assert s.rotate(a, c) is True
    assert s.rotate(a, c) is False  # gone
    assert s.touch(c).events == 1  # the activity moved with it
    with pytest.raises(redis.ResponseError, match="target exists"):
        s.rotate(b, c)
    assert s.sessions(user) == [b.encode(), c.encode()]
    assert s.revoke(user) == 2
    assert s.sessions(user) == [] and r.exists(b, c) == 0


def test_sessions_and_revoke_page_past_the_unpaged_limit(r, name):
    """The server refuses the whole-user forms past session.max-unpaged-sessions; the client
    pages (SESSIONS ... CURSOR, REVOKE ... COUNT), so it reaches every session anyway."""
    s = session_commands(r)
    user = f"{name}:many"
    keys = [f"{name}:m{i:04}" for i in range(2500)]  # more than one page of 1000
    with r.pipeline(transaction=False) as pipe:
        for k in keys:
            pipe.execute_command("SESSION.TOUCH", k, "USER", user)
        pipe.execute()
    old = r.config_get("session.max-unpaged-sessions")["session.max-unpaged-sessions"]
    r.config_set("session.max-unpaged-sessions", 10)
    try:
        with pytest.raises(redis.ResponseError, match="max-unpaged-sessions"):
            r.execute_command("SESSION.SESSIONS", user)
        assert s.sessions(user) == sorted(k.encode() for k in keys)
        assert s.revoke(user) == 2500
        assert s.sessions(user) == [] and r.exists(*keys[:100]) == 0
    finally:
        r.config_set("session.max-unpaged-sessions", old)


def test_load_and_purge(r, name):
    s = session_commands(r)
    key = f"{name}:s"
    s.touch(key, fields={"a": "1"}, event="e")
    assert s.purge() >= 0
    # AT is the primary's clock in its replicated purge: refused from clients.
    with pytest.raises(redis.ResponseError, match="reserved"):
        r.execute_command("SESSION.PURGE", "AT", int(time.time() * 1000))
    # SESSION.LOAD takes the module's saved form; a payload that does not decode is refused.
    with pytest.raises(redis.ResponseError, match="corrupt session encoding|unknown session"):
        s.load(f"{name}:t", b"\x00garbage")
    assert r.exists(f"{name}:t") == 0


def test_errors_are_redis_errors(r, name):
    s = session_commands(r)
    r.set(f"{name}:str", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        s.touch(f"{name}:str")
    with pytest.raises(redis.ResponseError, match="IDLE must be between"):
        s.touch(f"{name}:s", idle=0)
    with pytest.raises(ValueError):
        s.touch(f"{name}:s", categories=["c"])  # categories need an event


def test_trending_and_stats(r, name):
    """TRENDING and STATS on one server: the reply as sent (no merge), ids or (id, float)."""
    s = session_commands(r)
    cat = f"{name}:cat"
    hot, warm, cold = (f"{name}:{i}".encode() for i in ("hot", "warm", "cold"))
    s.catalog_add(cat, hot, score=1, categories=["news"])
    s.catalog_add(cat, warm, score=1, categories=["golf"])
    s.catalog_add(cat, cold, score=1, categories=["golf"])
    now = int(time.time() * 1000)
    before = s.stats(at=now)
    assert isinstance(before, Stats) and before.nodes == {}
    for i in range(3):
        s.touch(f"{name}:a{i}", event=hot, at=now)
    s.touch(f"{name}:a0", event=warm, at=now)
    assert s.trending(cat, at=now) == [hot, warm]
    assert s.trending(cat, count=1) == [hot]
    assert s.trending(cat, category="golf", at=now) == [warm]
    assert s.trending(cat, category="nope") == []
    scored = s.trending(cat, withscores=True, at=now)
    assert [i for i, _ in scored] == [hot, warm]
    assert scored[0][1] == pytest.approx(3.0) and scored[1][1] == pytest.approx(1.0)
    assert all(isinstance(v, float) for _, v in scored)
    after = s.stats(at=now)
    assert after.events == before.events + 4
    assert len(after.views_per_minute) == 60
    assert after.views_per_minute[-1] == before.views_per_minute[-1] + 4
    assert after.active >= 3 and after.active_window_minutes == 5
    assert after.trend_top_k == 1000 and after.trend_half_life == 600
    assert after.trending_tracked >= 2
    with pytest.raises(redis.ResponseError, match="no such catalog"):
        s.trending(f"{name}:none")


def test_trending_decoded(rd, name):
    s = session_commands(rd)
    cat, item = f"{name}:cat", f"{name}:x"
    s.catalog_add(cat, item, score=1)
    s.touch(f"{name}:s", event=item)
    assert s.trending(cat) == [item]
    assert s.stats().events >= 1


def test_surface_ro_records_nothing(r, name):
    s = session_commands(r)
    key, cat = f"{name}:s", f"{name}:cat"
    s.touch(key, event="seen", categories=["c"])
    s.catalog_add(cat, "a", score=2, categories=["c"])
    s.catalog_add(cat, "b", score=1, categories=["c"])
    for _ in range(3):  # no impression recorded: MAXIMPRESSIONS 1 never hides them
        assert s.surface_ro(key, cat, max_impressions=1) == [b"a", b"b"]
    picks = s.surface_ro(key, cat, withscores=True, boost_trending=1)
    assert sorted(i for i, _ in picks) == [b"a", b"b"]
    assert all(isinstance(v, float) for _, v in picks)
    assert s.surface_ro(key, items=["b", "zz"], count=1) == [b"b"]
    assert s.surface(key, cat, count=1) == [b"a"]  # SURFACE marks a
    assert s.surface_ro(key, cat, max_impressions=1) == [b"b"]
    assert s.surface(key, cat, boost_trending=0.5, max_impressions=1, nomark=True) == [b"b"]
    with pytest.raises(ValueError):
        s.surface_ro(key)


def test_ack_and_unread(r, name):
    """Read state: UNREAD lists delivered and undelivered (with the flag), ACK marks read."""
    s = session_commands(r)
    key, group = f"{name}:s", f"{name}:g"
    s.touch(key)
    s.enrich(key, join=[group])
    for n in ("n1", "n2", "n3"):
        assert s.notifygroup(group, n, f"p-{n}") is True
    unread = s.inbox(key, unread=True)
    assert [(n.id, n.delivered) for n in unread] == [(b"n1", False), (b"n2", False), (b"n3", False)]
    assert [n.id for n in s.inbox(key, count=2)] == [b"n1", b"n2"]  # delivered, not read
    unread = s.inbox(key, unread=True)
    assert [(n.id, n.delivered) for n in unread] == [(b"n1", True), (b"n2", True), (b"n3", False)]
    assert s.ack(key, group, upto="n3") == 2  # up to the last delivered one
    assert [(n.id, n.delivered) for n in s.inbox(key, unread=True)] == [(b"n3", False)]
    assert s.ack(key, group, ids=["n3"]) == 0  # not delivered yet: ignored
    (n3,) = s.inbox(key)
    assert n3.id == b"n3" and n3.delivered is None  # INBOX itself sends no flag
    assert s.ack(key, group, ids=["n3", "nope"]) == 1
    assert s.ack(key, group, ids=["n3"]) == 0
    assert s.inbox(key, unread=True) == []
    assert s.ack(f"{name}:missing", group, upto="n1") == 0
    with pytest.raises(ValueError):
        s.ack(key, group)
    with pytest.raises(ValueError):
        s.ack(key, group, upto="n1", ids=["n1"])
    with pytest.raises(ValueError):
        s.ack(key, group, ids=[])
    assert s.inbox(key, peek=True, unread=True) == []  # synonyms


def test_groups(r, name):
    s = session_commands(r)
    group = f"{name}:g"
    assert s.notifygroup(group, "a", "1") is True
    assert s.notifygroup(group, "b", "2") is True
    assert group.encode() in s.group_list()
    info = s.group_info(group)
    assert isinstance(info, GroupInfo)
    assert info.notifications == 2 and info.memory > 0
    assert info.last_seq > info.first_seq
    assert s.group_drop(group) is True
    assert s.group_drop(group) is False
    assert group.encode() not in s.group_list()
    with pytest.raises(redis.ResponseError, match="no such group"):
        s.group_info(group)


def test_cluster_merge_rules():
    """The merge the cluster helpers apply (pure functions, no server): TRENDING sums each id's
    scores over the primaries and orders by sum, then id; STATS sums minute by minute."""
    from session_store_redis.types import merge_stats, merge_trending, trending_per_node_count

    replies = [[(b"b", 1.0), (b"a", 2.0)], [(b"c", 3.0), (b"b", 2.0), (b"a", 1.0)], [(b"d", 2.5)]]
    assert merge_trending(replies, 10) == [(b"a", 3.0), (b"b", 3.0), (b"c", 3.0), (b"d", 2.5)]
    assert merge_trending(replies, 2) == [(b"a", 3.0), (b"b", 3.0)]
    assert merge_trending([[("y", 1.0)], [("x", 1.0)]], 1) == [("x", 1.0)]  # decoded ids
    assert [trending_per_node_count(n) for n in (1, 10, 100, 600, 1000, 1001)] == [
        11,
        20,
        200,
        1000,
        1000,
        1001,
    ]

    def st(events, vpm, tracked, top_k=1000):
        return Stats(events, events // 2, 5, vpm, tracked, top_k, 600)

    merged = merge_stats({"a:1": st(10, [1, 2, 3], 7), "b:2": st(4, [0, 5, 1], 9, top_k=50)})
    assert (merged.events, merged.active, merged.views_per_minute) == (14, 7, [1, 7, 4])
    assert (merged.trending_tracked, merged.trend_top_k) == (9, 1000)
    assert list(merged.nodes) == ["a:1", "b:2"] and merged.nodes["b:2"].trend_top_k == 50
