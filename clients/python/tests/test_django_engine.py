"""The Django engine's own promises beyond Django's suite: activity kept across cycle_key, the
middleware's single round trip, lifetimes sent to the module, datetime expiry, the serializer
setting, per-field saves, "log out everywhere"."""

import json
from datetime import timedelta

import pytest
import redis
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.utils import timezone

from session_store_redis import django as engine
from session_store_redis import session_commands
from session_store_redis.django import ActivityMiddleware, SessionStore


@pytest.fixture
def client(django_redis, protocol):
    with override_settings(SESSION_STORE_PROTOCOL=protocol):
        yield redis.Redis(host="127.0.0.1", port=django_redis.port, protocol=protocol)


def info(client, store):
    return session_commands(client).info(SessionStore.redis_key(store.session_key))


def commandstats(client):
    stats = client.info("commandstats")
    return {k[len("cmdstat_") :]: v["calls"] for k, v in stats.items()}


def test_cycle_key_keeps_activity(client):
    s = SessionStore()
    s["a"] = 1
    s.save()
    s.record("page:1", ["news"])
    s.record("page:2", ["news"])
    old = s.session_key
    s.cycle_key()
    assert s.session_key != old and not s.exists(old)
    assert s["a"] == 1
    doc = info(client, s)
    assert doc["activity"]["events"] == 2  # ROTATE moved the activity with the session
    s.save()
    assert SessionStore(s.session_key).load() == {"a": 1}


def test_lifetimes_sent_to_module(client):
    s = SessionStore()
    s["x"] = "y"
    s.save()
    doc = info(client, s)
    assert doc["idle_s"] == 1209600  # SESSION_COOKIE_AGE, not the module's default-idle
    assert doc["maxage_s"] == 315360000  # no silent one-day default-maxage
    s.set_expiry(300)
    s.save()
    assert info(client, s)["idle_s"] == 300
    assert 0 < client.pttl(SessionStore.redis_key(s.session_key)) <= 300_000
    with override_settings(SESSION_STORE_MAXAGE=7200):
        s.save()
        assert info(client, s)["maxage_s"] == 7200


def test_datetime_expiry_is_a_hard_end(client):
    s = SessionStore()
    s["x"] = "y"
    s.set_expiry(timezone.now() + timedelta(seconds=30))
    s.save()
    key = s.session_key
    # Activity slides the module's idle expiry; the datetime still ends the session: simulate
    # the time having passed by storing an expiry in the past without the save's check.
    past = json.dumps((timezone.now() - timedelta(seconds=1)).isoformat()).encode()
    session_commands(client).touch(SessionStore.redis_key(key), fields={"_session_expiry": past})
    loaded = SessionStore(key)
    assert loaded.load() == {} and loaded.session_key is None
    assert client.exists(SessionStore.redis_key(key)) == 0


class UpperSerializer:
    """A serializer of its own: JSON text, upper-cased marker."""

    def dumps(self, obj):
        return b"U" + json.dumps(obj).encode()

    def loads(self, data):
        assert data[:1] == b"U"
        return json.loads(data[1:])


def test_serializer_setting(client):
    with override_settings(SESSION_SERIALIZER=f"{__name__}.UpperSerializer"):
        s = SessionStore()
        s["k"] = {"n": 1}
        s.save()
        raw = session_commands(client).get(SessionStore.redis_key(s.session_key))
        assert raw == {b"k": b'U{"n": 1}'}
        assert SessionStore(s.session_key).load() == {"k": {"n": 1}}


def test_saves_only_changed_fields(client):
    s = SessionStore()
    s.update({"a": 1, "b": 2})
    s.save()
    one, two = SessionStore(s.session_key), SessionStore(s.session_key)
    one["a"] = 10
    two["b"] = 20
    one.save()
    two.save()  # does not write back a stale "a"
    assert SessionStore(s.session_key).load() == {"a": 10, "b": 20}
    del one["a"]
    one.save()
    assert SessionStore(s.session_key).load() == {"b": 20}


def test_clear_expired_is_a_no_op(client):
    SessionStore.clear_expired()


def _app(view):
    return SessionMiddleware(ActivityMiddleware(view))


def test_middleware_one_round_trip(client):
    s = SessionStore()
    s["cart"] = 3
    s.save()
    seen = {}

    def view(request):
        seen["cart"] = request.session["cart"]  # already loaded with the TOUCH
        seen["activity"] = request.intelligence.activity
        return HttpResponse("ok")

    request = RequestFactory().get("/article/7")
    request.COOKIES["sessionid"] = s.session_key
    before = commandstats(client)
    _app(view)(request)
    after = commandstats(client)
    diff = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    diff.pop("info", None)
    assert diff == {"session.touch": 1}  # TOUCH ... EVENT ... WITHFIELDS: one command
    assert seen["cart"] == 3
    assert seen["activity"].events == 1
    assert session_commands(client).seen(SessionStore.redis_key(s.session_key), "/article/7") == [
        True
    ]


def test_middleware_no_orphans(client):
    def view(request):
        return HttpResponse("ok")

    before = client.dbsize()
    _app(view)(RequestFactory().get("/"))  # no cookie: nothing recorded, nothing created
    stale = RequestFactory().get("/")
    stale.COOKIES["sessionid"] = "a" * 32  # a cookie whose session is gone
    _app(view)(stale)
    assert client.dbsize() == before
    assert client.exists(SessionStore.redis_key("a" * 32)) == 0


def test_logout_everywhere(client, name):
    user = f"{name}:42"
    stores = []
    for _ in range(3):
        st = SessionStore()
        st["_auth_user_id"] = user
        st.save()
        stores.append(st)
    keys = session_commands(client).sessions(user)
    assert sorted(keys) == sorted(SessionStore.redis_key(st.session_key).encode() for st in stores)

    def view(request):
        request.session["x"] = 1
        assert sorted(request.intelligence.sessions()) == sorted(st.session_key for st in stores)
        assert request.intelligence.logout_everywhere() == 3
        return HttpResponse("ok")

    request = RequestFactory().get("/")
    request.COOKIES["sessionid"] = stores[0].session_key
    _app(view)(request)
    assert session_commands(client).sessions(user) == []
    stores[1]["y"] = 2
    with pytest.raises(UpdateError):  # logged out elsewhere: a save never resurrects it
        stores[1].save()
    assert engine.logout_everywhere(user) == 0


def test_notify_and_surface_helpers(client, name):
    s = SessionStore()
    s["_auth_user_id"] = "7"
    s.save()
    key = SessionStore.redis_key(s.session_key)
    cmd = engine.commands()
    cmd.catalog_add(f"{name}:articles", "a:1", score=1, categories=["golf"])
    cmd.catalog_add(f"{name}:articles", "a:2", score=2, categories=["golf"])
    cmd.enrich(key, join=[f"{name}:beta"])
    assert engine.notify_group(f"{name}:beta", "n1", "hi") is True
    got = {}

    def view(request):
        got["surface"] = request.intelligence.surface(f"{name}:articles", count=5)
        got["inbox"] = request.intelligence.inbox()
        got["seen"] = request.intelligence.seen("/home", "/never")
        return HttpResponse("ok")

    request = RequestFactory().get("/home")
    request.COOKIES["sessionid"] = s.session_key
    _app(view)(request)
    assert got["surface"] == [b"a:2", b"a:1"]
    assert [n.payload for n in got["inbox"]] == [b"hi"]
    assert got["seen"] == [True, False]
    cmd.catalog_drop(f"{name}:articles")


def test_deleted_meanwhile_interrupts_the_request(client):
    """A session deleted during the request (logout elsewhere) is not resurrected by the save:
    Django's middleware raises SessionInterrupted (Django's own version of this test swaps in a
    DatabaseSession, so it is skipped in test_django_suite.py)."""
    from django.contrib.sessions.exceptions import SessionInterrupted

    s = SessionStore()
    s["a"] = 1
    s.save()

    def view(request):
        request.session["a"] = 2
        SessionStore(request.session.session_key).delete()
        return HttpResponse("ok")

    request = RequestFactory().get("/")
    request.COOKIES["sessionid"] = s.session_key
    with pytest.raises(SessionInterrupted):
        _app(view)(request)
    assert not s.exists(s.session_key)


def test_engine_in_cluster(cluster, protocol):
    """SESSION_STORE_CLUSTER: the engine on RedisCluster; cycle_key to a key in another slot
    (DUMP + RESTORE + DEL) keeps the fields, the activity and the user index entry."""
    host, port = cluster.startup_nodes[0]
    with override_settings(
        SESSION_STORE_URL=f"redis://{host}:{port}",
        SESSION_STORE_CLUSTER=True,
        SESSION_STORE_PROTOCOL=protocol,
    ):
        s = SessionStore()
        s.update({"_auth_user_id": f"cluster-{protocol}", "a": 1})
        s.save()
        s.record("p:1")
        s.record("p:2")
        cmd = engine.commands()
        for _ in range(5):  # until the new key lands in another slot (almost always)
            old_slot = cmd.client.keyslot(SessionStore.redis_key(s.session_key))
            s.cycle_key()
            if cmd.client.keyslot(SessionStore.redis_key(s.session_key)) != old_slot:
                break
        s.save()
        loaded = SessionStore(s.session_key)
        assert loaded.load() == {"_auth_user_id": f"cluster-{protocol}", "a": 1}
        doc = cmd.info(SessionStore.redis_key(s.session_key))
        assert doc["activity"]["events"] == 2
        assert cmd.sessions(f"cluster-{protocol}") == [
            SessionStore.redis_key(s.session_key).encode()
        ]
        assert engine.logout_everywhere(f"cluster-{protocol}") == 1
