"""Typed results of the SESSION.* commands, and the parsers that build them.

Every parser accepts what redis-py hands over on either protocol: RESP3 maps arrive as dicts,
RESP2 maps as flat ``[name, value, ...]`` lists; names arrive as ``bytes`` unless the client was
made with ``decode_responses=True``. User data (field names and values, items, keys, payloads)
is left exactly as redis-py returns it: ``bytes`` by default, ``str`` with ``decode_responses``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Data = bytes | str
"""User bytes as redis-py returns them (``str`` when the client decodes responses)."""


def _name(value: Any) -> str:
    """A reply's structural name (``new``, ``ttl_ms``, ...) as ``str`` whatever the decoding."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def pairs(reply: Any) -> list[tuple[Any, Any]]:
    """A map reply as (name, value) pairs: a RESP3 dict or a RESP2 flat list."""
    if isinstance(reply, dict):
        return list(reply.items())
    if isinstance(reply, (list, tuple)):
        if len(reply) % 2:
            raise ValueError("a map reply must have an even number of elements")
        return list(zip(reply[::2], reply[1::2], strict=False))
    raise TypeError(f"not a map reply: {type(reply).__name__}")


def named_map(reply: Any) -> dict[str, Any]:
    """A map whose names are the module's (ASCII) names: names become ``str``."""
    return {_name(k): v for k, v in pairs(reply)}


@dataclass(frozen=True)
class Touch:
    """The reply of ``SESSION.TOUCH``."""

    new: bool
    events: int
    unique: int
    seen_before: bool
    idle_ms: int
    ttl_ms: int
    pending: int
    extra: dict[str, Any] = field(default_factory=dict)
    """Names a newer module adds to the reply (kept, so an upgrade never breaks a caller)."""


_TOUCH_NAMES = ("new", "events", "unique", "seen_before", "idle_ms", "ttl_ms", "pending")


def parse_touch(reply: Any) -> Touch | None:
    if reply is None:  # XX on a missing session
        return None
    m = named_map(reply)
    extra = {k: v for k, v in m.items() if k not in _TOUCH_NAMES}
    return Touch(
        new=bool(m["new"]),
        events=int(m["events"]),
        unique=int(m["unique"]),
        seen_before=bool(m["seen_before"]),
        idle_ms=int(m["idle_ms"]),
        ttl_ms=int(m["ttl_ms"]),
        pending=int(m["pending"]),
        extra=extra,
    )


def parse_fields(reply: Any) -> dict[Data, Data] | None:
    """``SESSION.GET key``: every field, or None for a missing session."""
    if reply is None:
        return None
    return dict(pairs(reply))


def parse_values(reply: Any) -> list[Data | None] | None:
    """``SESSION.GET key field ...``: the values in order, None where missing."""
    if reply is None:
        return None
    return list(reply)


def parse_flags(reply: Any) -> list[bool]:
    return [bool(x) for x in reply]


def parse_json(reply: Any) -> dict[str, Any] | None:
    """ENRICH and INFO: one bulk string holding a JSON object; None for a missing session."""
    if reply is None:
        return None
    return json.loads(reply)


def parse_ok(reply: Any) -> bool:
    """``OK`` -> True; nil (ROTATE of a missing session) -> False."""
    if reply is None:
        return False
    if isinstance(reply, bool):
        return reply
    return _name(reply) == "OK"


def parse_bool(reply: Any) -> bool:
    return bool(reply)


def parse_int(reply: Any) -> int:
    return int(reply)


def parse_list(reply: Any) -> list[Data]:
    return list(reply or [])


def parse_scored(reply: Any) -> list[tuple[Data, float]]:
    """SURFACE ... WITHSCORES: item and rank alternate (a double on RESP3, a string on RESP2)."""
    flat = list(reply or [])
    return [(item, float(score)) for item, score in zip(flat[::2], flat[1::2], strict=False)]


@dataclass(frozen=True)
class Notification:
    """One entry of ``SESSION.INBOX``."""

    group: Data
    id: Data
    payload: Data
    published_ms: int
    delivered: bool | None = None
    """Whether INBOX already returned it (delivered, not yet acknowledged), when the server says
    (``INBOX ... UNREAD``, and ``PEEK`` on a module that lists unread notifications there); None
    when the entry has no ``delivered``."""


def parse_inbox(reply: Any) -> list[Notification]:
    out = []
    for entry in reply or []:
        m = named_map(entry)
        delivered = m.get("delivered")
        out.append(
            Notification(
                group=m["group"],
                id=m["id"],
                payload=m["payload"],
                published_ms=int(m["published_ms"]),
                delivered=None if delivered is None else bool(int(delivered)),
            )
        )
    return out


@dataclass(frozen=True)
class GroupInfo:
    """The reply of ``SESSION.GROUP INFO``."""

    notifications: int
    memory: int
    first_seq: int
    last_seq: int
    extra: dict[str, Any] = field(default_factory=dict)


def parse_group_info(reply: Any) -> GroupInfo | None:
    if reply is None:
        return None
    m = named_map(reply)
    known = ("notifications", "memory", "first_seq", "last_seq")
    return GroupInfo(
        notifications=int(m["notifications"]),
        memory=int(m["memory"]),
        first_seq=int(m["first_seq"]),
        last_seq=int(m["last_seq"]),
        extra={k: v for k, v in m.items() if k not in known},
    )


@dataclass(frozen=True)
class Stats:
    """The reply of ``SESSION.STATS``; in a cluster, the primaries' replies merged.

    Merged (``session_commands(RedisCluster(...)).stats()``): ``events`` and ``active`` are sums
    (each primary counts the TOUCH events of its own slots, and a session is one key, so it is
    active on one primary only: the sum is exact up to each primary's sketch error, about 1.6%),
    ``views_per_minute`` is summed minute by minute (every primary is asked for the same ``AT``,
    so the minutes line up), ``trending_tracked`` is the fullest primary's (each primary has its
    own top-K of ``trend_top_k`` entries), and the sizing (``active_window_minutes``,
    ``trend_top_k``, ``trend_half_life``) is the first primary's. ``nodes`` holds each
    primary's own reply by node name (``host:port``); empty on a standalone server.
    """

    events: int
    active: int
    active_window_minutes: int
    views_per_minute: list[int]
    trending_tracked: int
    trend_top_k: int
    trend_half_life: int
    extra: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Stats] = field(default_factory=dict)


_STATS_NAMES = (
    "events",
    "active",
    "active_window_minutes",
    "views_per_minute",
    "trending_tracked",
    "trend_top_k",
    "trend_half_life",
)


def parse_stats(reply: Any) -> Stats:
    m = named_map(reply)
    return Stats(
        events=int(m["events"]),
        active=int(m["active"]),
        active_window_minutes=int(m["active_window_minutes"]),
        views_per_minute=[int(v) for v in m["views_per_minute"]],
        trending_tracked=int(m["trending_tracked"]),
        trend_top_k=int(m["trend_top_k"]),
        trend_half_life=int(m["trend_half_life"]),
        extra={k: v for k, v in m.items() if k not in _STATS_NAMES},
    )


def merge_stats(per_node: dict[str, Stats]) -> Stats:
    """The primaries' STATS as one (see ``Stats``); per_node in the primaries' order."""
    replies = list(per_node.values())
    if not replies:
        raise ValueError("no primary replied")
    first = replies[0]
    width = max(len(s.views_per_minute) for s in replies)
    vpm = [0] * width
    for s in replies:
        # aligned on the current minute (the last element), should a node keep fewer minutes
        offset = width - len(s.views_per_minute)
        for i, v in enumerate(s.views_per_minute):
            vpm[offset + i] += v
    return Stats(
        events=sum(s.events for s in replies),
        active=sum(s.active for s in replies),
        active_window_minutes=first.active_window_minutes,
        views_per_minute=vpm,
        trending_tracked=max(s.trending_tracked for s in replies),
        trend_top_k=first.trend_top_k,
        trend_half_life=first.trend_half_life,
        extra=dict(first.extra),
        nodes=dict(per_node),
    )


def trending_per_node_count(count: int) -> int:
    """How many items a cluster helper asks each primary for: max(count * 2, count + 10), at
    most 1000 (the command's limit; a count above it is passed on, and refused, as given)."""
    if count > 1000:
        return count
    return min(max(count * 2, count + 10), 1000)


def _order_key(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def merge_trending(replies: list[list[tuple[Data, float]]], count: int) -> list[tuple[Data, float]]:
    """Each primary's TRENDING ... WITHSCORES as one list: an item's scores summed over the
    primaries, by summed score (highest first), then id (bytewise), the first ``count``."""
    totals: dict[Any, float] = {}
    for reply in replies:
        for item, score in reply:
            totals[item] = totals.get(item, 0.0) + score
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], _order_key(kv[0])))
    return ranked[:count]


@dataclass(frozen=True)
class CatalogInfo:
    """The reply of ``SESSION.CATALOG INFO``."""

    items: int
    categories: int
    memory: int
    extra: dict[str, Any] = field(default_factory=dict)


def parse_catalog_info(reply: Any) -> CatalogInfo | None:
    if reply is None:
        return None
    m = named_map(reply)
    known = ("items", "categories", "memory")
    return CatalogInfo(
        items=int(m["items"]),
        categories=int(m["categories"]),
        memory=int(m["memory"]),
        extra={k: v for k, v in m.items() if k not in known},
    )


@dataclass(frozen=True)
class PageView:
    """One page view: the TOUCH that recorded it and the session's fields as loaded with it.

    ``touch`` and ``fields`` are None when the session does not exist (``xx=True``).
    """

    touch: Touch | None
    fields: dict[Data, Data] | None
