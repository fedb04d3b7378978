"""Every SESSION command through session_commands(), on RESP2 and RESP3 (the `protocol`
fixture), with bytes (default) and str (decode_responses) clients: the same Python values."""

import time

import pytest
import redis

from session_store_redis import CatalogInfo, Notification, PageView, Touch, session_commands


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
