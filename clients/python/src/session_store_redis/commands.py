"""The SESSION.* commands as methods of a redis-py client, the way redis-py ships ``r.json()``.

    import redis
    from session_store_redis import session_commands

    s = session_commands(redis.Redis())          # or redis.asyncio.Redis(), RedisCluster(...)
    view = s.touch("sess:1", idle=1800, event="article:7", categories=["golf"])
    view.events, view.seen_before, view.ttl_ms

One method per command (CATALOG's subcommands are ``catalog_add`` ... ``catalog_list``); each
builds the command's arguments, sends it through the client's own ``execute_command`` and turns
the reply into the same Python value on RESP2 and RESP3 (see ``types``). With an asyncio client
every method returns an awaitable of that value.

In Redis Cluster keyed commands are routed by the client (the module's key specs). The registry
is one for the whole cluster (the module sends its changes over the cluster bus): its commands
(CATALOG, NOTIFYGROUP, GROUP) go to one primary. PURGE (each node's own expiry), the paged user
index (SESSIONS, REVOKE) and the site-wide analytics (TRENDING, STATS: each primary counts the
events of its own slots) are sent to every primary and their replies merged. SURFACE_RO goes to a
replica only when the cluster client reads from replicas (``read_from_replicas`` or a
``load_balancing_strategy``), else to the key's primary.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .types import (
    Data,
    PageView,
    merge_stats,
    merge_trending,
    pairs,
    parse_bool,
    parse_catalog_info,
    parse_fields,
    parse_flags,
    parse_group_info,
    parse_inbox,
    parse_int,
    parse_json,
    parse_list,
    parse_ok,
    parse_scored,
    parse_stats,
    parse_touch,
    parse_values,
    trending_per_node_count,
)

Arg = bytes | str | int | float
Parser = Callable[[Any], Any]


def _counted(token: str, values: Sequence[Arg]) -> list[Arg]:
    """``TOKEN count v1 v2 ...``, or nothing for an empty list (a count must be positive)."""
    values = list(values)
    return [token, len(values), *values] if values else []


def _flat(mapping: Mapping[Arg, Arg] | Iterable[tuple[Arg, Arg]]) -> list[Arg]:
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    out: list[Arg] = []
    for name, value in items:
        out += [name, value]
    return out


def _is_cluster(client: Any) -> bool:
    try:
        from redis.cluster import RedisCluster
    except ImportError:  # pragma: no cover
        RedisCluster = ()  # type: ignore[assignment,misc]
    try:
        from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    except ImportError:  # pragma: no cover
        AsyncRedisCluster = ()  # type: ignore[assignment,misc]
    return isinstance(client, (RedisCluster, AsyncRedisCluster))


def _now_ms() -> int:
    return int(time.time() * 1000)


def surface_args(
    command: str,
    key: Arg,
    catalog: Arg | None = None,
    *,
    items: Sequence[Arg] | None = None,
    count: int | None = None,
    category: Arg | None = None,
    explore: float | None = None,
    max_impressions: int | None = None,
    boost_trending: float | None = None,
    nomark: bool = False,
    withscores: bool = False,
) -> list[Arg]:
    """SURFACE / SURFACE_RO arguments (FROM catalog, or ITEMS)."""
    if (catalog is None) == (items is None):
        raise ValueError("give either a catalog or items")
    args: list[Arg] = [command, key]
    if catalog is not None:
        args += ["FROM", catalog]
    else:
        items = list(items or [])
        if not items:
            raise ValueError("items must not be empty")
        args += ["ITEMS", len(items), *items]
    if count is not None:
        args += ["COUNT", int(count)]
    if category is not None:
        args += ["CATEGORY", category]
    if explore is not None:
        args += ["EXPLORE", repr(float(explore))]
    if max_impressions is not None:
        args += ["MAXIMPRESSIONS", int(max_impressions)]
    if boost_trending is not None:
        args += ["BOOST", "TRENDING", repr(float(boost_trending))]
    if nomark:
        args.append("NOMARK")
    if withscores:
        args.append("WITHSCORES")
    return args


def _is_async(client: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


# --- Argument builders (shared by the sync and async classes) -----------------------------------


def touch_args(
    key: Arg,
    *,
    idle: int | None = None,
    maxage: int | None = None,
    xx: bool = False,
    user: Arg | None = None,
    fields: Mapping[Arg, Arg] | None = None,
    delete: Iterable[Arg] | None = None,
    event: Arg | None = None,
    categories: Iterable[Arg] | None = None,
    at: int | None = None,
) -> list[Arg]:
    args: list[Arg] = ["SESSION.TOUCH", key]
    if idle is not None:
        args += ["IDLE", int(idle)]
    if maxage is not None:
        args += ["MAXAGE", int(maxage)]
    if xx:
        args.append("XX")
    if user is not None:
        args += ["USER", user]
    if fields:
        flat = _flat(fields)
        args += ["SET", len(flat) // 2, *flat]
    if delete:
        args += _counted("DEL", list(delete))
    if event is not None:
        args += ["EVENT", event]
        if categories:
            args += _counted("CATEGORIES", list(categories))
    elif categories:
        raise ValueError("categories need an event")
    if at is not None:
        args += ["AT", int(at)]
    return args


class _Commands:
    """Argument building and reply parsing; subclasses say how a command is sent."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cluster = _is_cluster(client)

    # How commands travel: overridden by the sync and async classes. ``_one``'s keyword
    # arguments go to ``execute_command`` (``target_nodes`` in a cluster).
    def _one(self, parse: Parser, *args: Arg, **kw: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _every(self, merge: Callable[[list[Any]], Any], parse: Parser, *args: Arg) -> Any:
        raise NotImplementedError  # pragma: no cover - abstract

    def _each(self, merge: Callable[[dict[str, Any]], Any], parse: Parser, *args: Arg) -> Any:
        """Every primary's parsed reply by node name (``host:port``, in the client's order),
        merged by ``merge``; a standalone server is one node named ``""``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _read_target(self, key: Arg) -> dict[str, Any]:
        """Where a read-only keyed command may go: a node of the key's slot chosen by the
        cluster client's own replica-read setting (``read_from_replicas`` or a
        ``load_balancing_strategy``; redis-py applies it only to the commands it knows as reads),
        else nothing (routed to the primary by the key spec)."""
        if not self.cluster:
            return {}
        c = self.client
        from_replicas = bool(getattr(c, "read_from_replicas", False))
        strategy = getattr(c, "load_balancing_strategy", None)
        if not from_replicas and strategy is None:
            return {}
        try:
            node = c.nodes_manager.get_node_from_slot(c.keyslot(key), from_replicas, strategy)
        except (AttributeError, TypeError):  # pragma: no cover - another redis-py's API
            return {}
        return {"target_nodes": node}

    def _registry(self, parse: Parser, *args: Arg) -> Any:
        """A registry command: to one primary in a cluster (the module gives it to the others)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _transaction(self, parse: Callable[[list[Any]], Any], commands: list[list[Arg]]) -> Any:
        raise NotImplementedError  # pragma: no cover - abstract

    # --- Sessions ------------------------------------------------------------------------------

    def touch(self, key: Arg, **options: Any) -> Any:
        """SESSION.TOUCH: create/refresh, write fields, record an event. -> Touch (None with xx
        on a missing session). Options: idle, maxage (seconds), xx, user, fields (mapping for
        SET), delete (names for DEL), event, categories, at (unix ms)."""
        return self._one(parse_touch, *touch_args(key, **options))

    def get(self, key: Arg, *fields: Arg) -> Any:
        """SESSION.GET: without names a dict of every field; with names a list of values (None
        where missing). None for a missing session. Never renews the TTL."""
        if fields:
            return self._one(parse_values, "SESSION.GET", key, *fields)
        return self._one(parse_fields, "SESSION.GET", key)

    def page_view(
        self,
        key: Arg,
        *,
        event: Arg | None = None,
        categories: Iterable[Arg] | None = None,
        fields: Sequence[Arg] = (),
        xx: bool = True,
        **touch_options: Any,
    ) -> Any:
        """Load the session and record the view in ONE command -> PageView.

        ``SESSION.TOUCH key [XX] EVENT ... WITHFIELDS [n field ...]``: the touch that records the
        view and slides the expiry also replies with the fields. ``xx`` (default) records
        nothing and creates nothing for a missing session: PageView(None, None). ``fields`` names
        the fields to load (default: all; then ``PageView.fields`` is a dict, else a dict of the
        named ones that exist).
        """
        names = list(fields)
        touch = touch_args(key, xx=xx, event=event, categories=categories, **touch_options)
        touch += ["WITHFIELDS", len(names), *names] if names else ["WITHFIELDS"]

        def parse(reply: Any) -> PageView:
            t = parse_touch(reply)
            if t is None:
                return PageView(None, None)
            extra = dict(t.extra)
            raw = extra.pop("fields", None) or []
            t = dataclasses.replace(t, extra=extra)
            if names:
                loaded = {n: v for n, v in zip(names, raw, strict=False) if v is not None}
            else:
                loaded = dict(pairs(raw))
            return PageView(t, loaded)

        return self._one(parse, *touch)

    def seen(self, key: Arg, *items: Arg) -> Any:
        """SESSION.SEEN -> list of bool (True = probably seen, False = certainly not)."""
        return self._one(parse_flags, "SESSION.SEEN", key, *items)

    def enrich(
        self,
        key: Arg,
        *,
        attrs: Mapping[str, Any] | str | bytes | None = None,
        join: Iterable[Arg] = (),
        leave: Iterable[Arg] = (),
        at: int | None = None,
    ) -> Any:
        """SESSION.ENRICH -> the calculated data as a dict (None for a missing session). ``attrs``
        is a JSON merge patch: a dict (serialized here) or JSON text."""
        args: list[Arg] = ["SESSION.ENRICH", key]
        if attrs is not None:
            text = attrs if isinstance(attrs, (str, bytes)) else json.dumps(attrs)
            args += ["ATTRS", text]
        args += _counted("JOIN", list(join))
        args += _counted("LEAVE", list(leave))
        if at is not None:
            args += ["AT", int(at)]
        return self._one(parse_json, *args)

    def info(self, key: Arg) -> Any:
        """SESSION.INFO -> the whole session as a dict (None for a missing session)."""
        return self._one(parse_json, "SESSION.INFO", key)

    def load(self, key: Arg, payload: bytes) -> Any:
        """SESSION.LOAD: store a session from its saved form -> True."""
        return self._one(parse_ok, "SESSION.LOAD", key, payload)

    def surface(
        self,
        key: Arg,
        catalog: Arg | None = None,
        *,
        items: Sequence[Arg] | None = None,
        count: int | None = None,
        category: Arg | None = None,
        explore: float | None = None,
        max_impressions: int | None = None,
        boost_trending: float | None = None,
        nomark: bool = False,
        withscores: bool = False,
    ) -> Any:
        """SESSION.SURFACE ... FROM catalog, or ITEMS (the given candidates) -> list of items, or
        of (item, rank) with ``withscores``. ``boost_trending``: BOOST TRENDING w."""
        args = surface_args(
            "SESSION.SURFACE",
            key,
            catalog,
            items=items,
            count=count,
            category=category,
            explore=explore,
            max_impressions=max_impressions,
            boost_trending=boost_trending,
            nomark=nomark,
            withscores=withscores,
        )
        return self._one(parse_scored if withscores else parse_list, *args)

    def surface_ro(
        self,
        key: Arg,
        catalog: Arg | None = None,
        *,
        items: Sequence[Arg] | None = None,
        count: int | None = None,
        category: Arg | None = None,
        explore: float | None = None,
        max_impressions: int | None = None,
        boost_trending: float | None = None,
        withscores: bool = False,
    ) -> Any:
        """SESSION.SURFACE_RO: SURFACE that records nothing (no impression, nothing
        replicated) -> as ``surface``. In a cluster it goes to a replica of the key's slot only
        when the client reads from replicas (see ``_read_target``), else to the primary."""
        args = surface_args(
            "SESSION.SURFACE_RO",
            key,
            catalog,
            items=items,
            count=count,
            category=category,
            explore=explore,
            max_impressions=max_impressions,
            boost_trending=boost_trending,
            withscores=withscores,
        )
        return self._one(
            parse_scored if withscores else parse_list, *args, **self._read_target(key)
        )

    def impress(self, key: Arg, items: Sequence[Arg], *, width: int | None = None) -> Any:
        """SESSION.IMPRESS -> the number of impressions recorded (0 for a missing session)."""
        args: list[Arg] = ["SESSION.IMPRESS", key, *_counted_required(items)]
        if width is not None:
            args += ["WIDTH", int(width)]
        return self._one(parse_int, *args)

    def inbox(
        self,
        key: Arg,
        *,
        count: int | None = None,
        peek: bool = False,
        unread: bool = False,
        at: int | None = None,
    ) -> Any:
        """SESSION.INBOX -> list of Notification, oldest first: the undelivered ones, marked
        delivered. With ``peek`` (or its synonym ``unread``): every live notification not yet
        acknowledged, delivered or not (``Notification.delivered`` says which); changes
        nothing."""
        args: list[Arg] = ["SESSION.INBOX", key]
        if count is not None:
            args += ["COUNT", int(count)]
        if peek or unread:
            args.append("PEEK")
        if at is not None:
            args += ["AT", int(at)]
        return self._one(parse_inbox, *args)

    def ack(
        self,
        key: Arg,
        group: Arg,
        *,
        upto: Arg | None = None,
        ids: Iterable[Arg] | None = None,
        at: int | None = None,
    ) -> Any:
        """SESSION.ACK: mark delivered notifications of ``group`` read, every one ``upto`` an id
        (included) or the listed ``ids`` -> how many were newly marked."""
        if (upto is None) == (ids is None):
            raise ValueError("give upto or ids")
        args: list[Arg] = ["SESSION.ACK", key, group]
        if upto is not None:
            args += ["UPTO", upto]
        else:
            args += ["IDS", *_counted_required(list(ids or []))]
        if at is not None:
            args += ["AT", int(at)]
        return self._one(parse_int, *args)

    def rotate(self, key: Arg, newkey: Arg) -> Any:
        """SESSION.ROTATE -> True when moved, False when ``key`` does not exist. In a cluster
        both keys must share a slot (a hash tag)."""
        return self._one(parse_ok, "SESSION.ROTATE", key, newkey)

    # --- The per-user index (per node in a cluster: every primary, merged) -----------------

    # SESSIONS and REVOKE go page by page (``CURSOR``/``COUNT``): the server refuses the whole
    # form for a user with more than ``session.max-unpaged-sessions`` sessions, and a page never
    # holds it for long. The sync and async classes run the loops.
    def sessions(self, user: Arg) -> Any:
        """SESSION.SESSIONS (paged) -> the user's live session keys, sorted."""
        raise NotImplementedError  # pragma: no cover - abstract

    def revoke(self, user: Arg) -> Any:
        """SESSION.REVOKE (in bounded steps, "log out everywhere") -> how many were deleted."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _targets(self) -> list[dict[str, Any]]:
        """Keyword arguments sending a command to each primary (one call without a cluster)."""
        if not self.cluster:
            return [{}]
        return [{"target_nodes": node} for node in self.client.get_primaries()]

    # --- The registry (module-global: every primary in a cluster) --------------------------

    def catalog_add(
        self,
        catalog: Arg,
        item: Arg,
        *,
        score: float | None = None,
        categories: Iterable[Arg] = (),
        ttl: int | None = None,
        expireat: int | None = None,
    ) -> Any:
        """SESSION.CATALOG ADD -> True for a new item, False when it replaced one."""
        if ttl is not None and expireat is not None:
            raise ValueError("give ttl or expireat, not both")
        args: list[Arg] = ["SESSION.CATALOG", "ADD", catalog, item]
        if score is not None:
            args += ["SCORE", repr(float(score))]
        args += _counted("CATEGORIES", list(categories))
        if ttl is not None:
            args += ["TTL", int(ttl)]
        if expireat is not None:
            args += ["EXPIREAT", int(expireat)]
        return self._registry(parse_bool, *args)

    def catalog_del(self, catalog: Arg, *items: Arg) -> Any:
        """SESSION.CATALOG DEL -> the number of items removed."""
        return self._registry(parse_int, "SESSION.CATALOG", "DEL", catalog, *items)

    def catalog_drop(self, catalog: Arg) -> Any:
        """SESSION.CATALOG DROP -> True when the catalog existed."""
        return self._registry(parse_bool, "SESSION.CATALOG", "DROP", catalog)

    def catalog_info(self, catalog: Arg) -> Any:
        """SESSION.CATALOG INFO -> CatalogInfo (items, categories, memory)."""
        return self._one(parse_catalog_info, "SESSION.CATALOG", "INFO", catalog)

    def catalog_list(self) -> Any:
        """SESSION.CATALOG LIST -> catalog names, sorted."""
        return self._registry(lambda r: sorted(parse_list(r)), "SESSION.CATALOG", "LIST")

    def notifygroup(
        self,
        group: Arg,
        id: Arg,
        payload: Arg,
        *,
        ttl: int | None = None,
        expireat: int | None = None,
        maxlen: int | None = None,
        at: int | None = None,
        joined_before: int | str | None = None,
        joined_after: int | None = None,
    ) -> Any:
        """SESSION.NOTIFYGROUP -> True when stored, False when the id is already live.

        ``joined_before`` (unix ms, or ``"now"``: the publication's own time) and
        ``joined_after`` (unix ms) reach only members whose join time is in that window."""
        if ttl is not None and expireat is not None:
            raise ValueError("give ttl or expireat, not both")
        args: list[Arg] = ["SESSION.NOTIFYGROUP", group, id, payload]
        if joined_before is not None:
            now = isinstance(joined_before, str) and joined_before.lower() == "now"
            args += ["JOINEDBEFORE", "NOW" if now else int(joined_before)]
        if joined_after is not None:
            args += ["JOINEDAFTER", int(joined_after)]
        if ttl is not None:
            args += ["TTL", int(ttl)]
        if expireat is not None:
            args += ["EXPIREAT", int(expireat)]
        if maxlen is not None:
            args += ["MAXLEN", int(maxlen)]
        if at is not None:
            args += ["AT", int(at)]
        return self._registry(parse_bool, *args)

    def group_list(self) -> Any:
        """SESSION.GROUP LIST -> group names, sorted."""
        return self._registry(lambda r: sorted(parse_list(r)), "SESSION.GROUP", "LIST")

    def group_info(self, group: Arg) -> Any:
        """SESSION.GROUP INFO -> GroupInfo (notifications, memory, first_seq, last_seq);
        ``ResponseError`` "no such group" when absent."""
        return self._registry(parse_group_info, "SESSION.GROUP", "INFO", group)

    def group_drop(self, group: Arg) -> Any:
        """SESSION.GROUP DROP -> True when the group existed."""
        return self._registry(parse_bool, "SESSION.GROUP", "DROP", group)

    # --- Site-wide analytics (per primary in a cluster: every primary, merged) ----------------

    def trending(
        self,
        catalog: Arg,
        *,
        count: int | None = None,
        category: Arg | None = None,
        withscores: bool = False,
        at: int | None = None,
    ) -> Any:
        """SESSION.TRENDING -> the catalog's trending items, most trending first (a list of
        ids, or of (id, decayed count) with ``withscores``).

        In a cluster each primary counts only the events of its own slots. Every primary is
        asked ``WITHSCORES`` for ``trending_per_node_count(count)`` items (max(2n, n + 10), at
        most 1000) at one ``AT`` (``at``, else now), each item's counts are summed over the
        primaries, and the first ``count`` by summed count, then id, are returned. A per-primary
        top list can miss an item that is just below the cut on every primary while its sum
        would make the top: asking each primary for more than ``count`` makes that unlikely, not
        impossible (nor is a merged count exact for an item some primary left out)."""
        n = 10 if count is None else int(count)
        args: list[Arg] = ["SESSION.TRENDING", catalog]
        if category is not None:
            extra: list[Arg] = ["CATEGORY", category]
        else:
            extra = []
        if not self.cluster:
            if count is not None:
                args += ["COUNT", n]
            args += extra
            if withscores:
                args.append("WITHSCORES")
            if at is not None:
                args += ["AT", int(at)]
            return self._one(parse_scored if withscores else parse_list, *args)
        args += ["COUNT", trending_per_node_count(n), *extra, "WITHSCORES"]
        args += ["AT", _now_ms() if at is None else int(at)]

        def merge(replies: dict[str, Any]) -> Any:
            top = merge_trending(list(replies.values()), n)
            return top if withscores else [item for item, _ in top]

        return self._each(merge, parse_scored, *args)

    def stats(self, *, at: int | None = None) -> Any:
        """SESSION.STATS -> Stats. In a cluster every primary is asked at one ``AT`` (``at``,
        else now) and the replies merged (see ``Stats``: sums, minute-by-minute sums, the first
        primary's sizing, each primary's own reply in ``nodes``)."""
        if not self.cluster:
            args: list[Arg] = ["SESSION.STATS"]
            if at is not None:
                args += ["AT", int(at)]
            return self._one(parse_stats, *args)
        when = _now_ms() if at is None else int(at)
        return self._each(merge_stats, parse_stats, "SESSION.STATS", "AT", when)

    def purge(self) -> Any:
        """SESSION.PURGE -> how many expired registry entries went (by the server's clock; `AT` is
        reserved for replication and the AOF)."""
        return self._every(sum, parse_int, "SESSION.PURGE")


def _counted_required(items: Sequence[Arg]) -> list[Arg]:
    items = list(items)
    if not items:
        raise ValueError("items must not be empty")
    return [len(items), *items]


#: Sessions per SESSIONS page / REVOKE step.
PAGE = 1000


def _cursor_done(cursor: Any) -> bool:
    return (cursor.decode() if isinstance(cursor, bytes) else str(cursor)) == "0"


def _revoke_done(left: int, before: int | None) -> bool:
    # 0 remain, or no progress (the rest are sessions this caller may not delete)
    return left == 0 or (before is not None and left >= before)


class SessionCommands(_Commands):
    """The SESSION.* commands on a synchronous redis-py client (``Redis`` or ``RedisCluster``)."""

    def sessions(self, user: Arg) -> list[Data]:
        """SESSION.SESSIONS (paged, every primary) -> the user's live session keys, sorted."""
        out: set[Data] = set()
        for kw in self._targets():
            cursor: Any = "0"
            while True:
                cursor, keys = self.client.execute_command(
                    "SESSION.SESSIONS", user, "CURSOR", cursor, "COUNT", PAGE, **kw
                )
                out.update(parse_list(keys))
                if _cursor_done(cursor):
                    break
        return sorted(out)

    def revoke(self, user: Arg) -> int:
        """SESSION.REVOKE in bounded steps on every primary ("log out everywhere") -> deleted."""
        total = 0
        for kw in self._targets():
            before: int | None = None
            while True:
                gone, left = self.client.execute_command(
                    "SESSION.REVOKE", user, "COUNT", PAGE, **kw
                )
                total += parse_int(gone)
                if _revoke_done(parse_int(left), before):
                    break
                before = parse_int(left)
        return total

    def _one(self, parse: Parser, *args: Arg, **kw: Any) -> Any:
        return parse(self.client.execute_command(*args, **kw))

    def _each(self, merge: Callable[[dict[str, Any]], Any], parse: Parser, *args: Arg) -> Any:
        if not self.cluster:
            return merge({"": parse(self.client.execute_command(*args))})
        return merge(
            {
                node.name: parse(self.client.execute_command(*args, target_nodes=node))
                for node in self.client.get_primaries()
            }
        )

    def _every(self, merge: Callable[[list[Any]], Any], parse: Parser, *args: Arg) -> Any:
        if not self.cluster:
            return parse(self.client.execute_command(*args))
        replies = [
            parse(self.client.execute_command(*args, target_nodes=node))
            for node in self.client.get_primaries()
        ]
        return merge(replies)

    def _registry(self, parse: Parser, *args: Arg) -> Any:
        if not self.cluster:
            return parse(self.client.execute_command(*args))
        node = self.client.get_primaries()[0]
        return parse(self.client.execute_command(*args, target_nodes=node))

    def _transaction(self, parse: Callable[[list[Any]], Any], commands: list[list[Arg]]) -> Any:
        with self.client.pipeline(transaction=True) as pipe:
            for args in commands:
                pipe.execute_command(*args)
            return parse(pipe.execute())


class AsyncSessionCommands(_Commands):
    """The SESSION.* commands on a ``redis.asyncio`` client: every method returns an awaitable."""

    async def sessions(self, user: Arg) -> list[Data]:
        """SESSION.SESSIONS (paged, every primary) -> the user's live session keys, sorted."""
        out: set[Data] = set()
        for kw in self._targets():
            cursor: Any = "0"
            while True:
                cursor, keys = await self.client.execute_command(
                    "SESSION.SESSIONS", user, "CURSOR", cursor, "COUNT", PAGE, **kw
                )
                out.update(parse_list(keys))
                if _cursor_done(cursor):
                    break
        return sorted(out)

    async def revoke(self, user: Arg) -> int:
        """SESSION.REVOKE in bounded steps on every primary ("log out everywhere") -> deleted."""
        total = 0
        for kw in self._targets():
            before: int | None = None
            while True:
                gone, left = await self.client.execute_command(
                    "SESSION.REVOKE", user, "COUNT", PAGE, **kw
                )
                total += parse_int(gone)
                if _revoke_done(parse_int(left), before):
                    break
                before = parse_int(left)
        return total

    async def _one(self, parse: Parser, *args: Arg, **kw: Any) -> Any:
        return parse(await self.client.execute_command(*args, **kw))

    async def _each(self, merge: Callable[[dict[str, Any]], Any], parse: Parser, *args: Arg) -> Any:
        if not self.cluster:
            return merge({"": parse(await self.client.execute_command(*args))})
        nodes = list(self.client.get_primaries())
        replies = await asyncio.gather(
            *(self.client.execute_command(*args, target_nodes=node) for node in nodes)
        )
        return merge({node.name: parse(r) for node, r in zip(nodes, replies, strict=True)})

    async def _every(self, merge: Callable[[list[Any]], Any], parse: Parser, *args: Arg) -> Any:
        if not self.cluster:
            return parse(await self.client.execute_command(*args))
        replies = await asyncio.gather(
            *(
                self.client.execute_command(*args, target_nodes=node)
                for node in self.client.get_primaries()
            )
        )
        return merge([parse(r) for r in replies])

    async def _registry(self, parse: Parser, *args: Arg) -> Any:
        if not self.cluster:
            return parse(await self.client.execute_command(*args))
        node = self.client.get_primaries()[0]
        return parse(await self.client.execute_command(*args, target_nodes=node))

    async def _transaction(
        self, parse: Callable[[list[Any]], Any], commands: list[list[Arg]]
    ) -> Any:
        async with self.client.pipeline(transaction=True) as pipe:
            for args in commands:
                pipe.execute_command(*args)
            return parse(await pipe.execute())


def session_commands(client: Any) -> SessionCommands | AsyncSessionCommands:
    """The SESSION.* commands on ``client``: ``redis.Redis``, ``redis.cluster.RedisCluster``, or
    their ``redis.asyncio`` counterparts (then every method returns an awaitable)."""
    if _is_async(client):
        return AsyncSessionCommands(client)
    return SessionCommands(client)
