"""The same commands on redis.asyncio: every method returns an awaitable of the same values."""

import redis.asyncio as aioredis

from session_store_redis import AsyncSessionCommands, PageView, session_commands


async def test_async_commands(server, protocol, name):
    r = aioredis.Redis(host="127.0.0.1", port=server.port, protocol=protocol)
    try:
        s = session_commands(r)
        assert isinstance(s, AsyncSessionCommands)
        key, cat, group = f"{name}:s", f"{name}:cat", f"{name}:g"
        t = await s.touch(
            key, idle=60, user=f"{name}:u", fields={"a": b"\x00\xff"}, event="i1", categories=["c"]
        )
        assert t.new and t.events == 1 and 0 < t.ttl_ms <= 60_000
        assert await s.get(key) == {b"a": b"\x00\xff"}
        assert await s.get(key, "a", "b") == [b"\x00\xff", None]
        assert await s.seen(key, "i1", "i2") == [True, False]
        view = await s.page_view(key, event="i2")
        assert view.touch.events == 2 and view.fields == {b"a": b"\x00\xff"}
        assert await s.page_view(f"{name}:none", event="x") == PageView(None, None)
        doc = await s.enrich(key, join=[group])
        assert doc["groups"] == [group]
        assert (await s.info(key))["user"] == f"{name}:u"
        assert await s.catalog_add(cat, "x", score=1, categories=["c"]) is True
        await s.touch(f"{name}:other", event="x")  # x trends
        assert (await s.catalog_info(cat)).items == 1
        assert cat.encode() in await s.catalog_list()
        assert await s.surface(key, cat, withscores=True) != []
        assert await s.impress(key, ["x"]) == 1
        assert await s.notifygroup(group, "n", "p") is True
        assert [(n.id, n.delivered) for n in await s.inbox(key, unread=True)] == [(b"n", False)]
        (n,) = await s.inbox(key)
        assert n.payload == b"p"
        assert (await s.inbox(key, unread=True))[0].delivered is True
        assert await s.ack(key, group, ids=["n"]) == 1
        assert await s.inbox(key, unread=True) == []
        assert (await s.group_info(group)).notifications == 1
        assert group.encode() in await s.group_list()
        assert await s.surface_ro(key, cat) == await s.surface_ro(key, cat)
        assert await s.trending(cat) == [b"x"]
        assert (await s.trending(cat, withscores=True))[0][0] == b"x"
        assert (await s.stats()).events >= 2
        assert await s.group_drop(group) is True
        assert await s.sessions(f"{name}:u") == [key.encode()]
        assert await s.rotate(key, f"{name}:s2") is True
        assert await s.revoke(f"{name}:u") == 1
        assert await s.catalog_drop(cat) is True
        assert await s.purge() >= 0
    finally:
        await r.aclose()
