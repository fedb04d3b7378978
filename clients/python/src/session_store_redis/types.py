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


def parse_inbox(reply: Any) -> list[Notification]:
    out = []
    for entry in reply or []:
        m = named_map(entry)
        out.append(
            Notification(
                group=m["group"],
                id=m["id"],
                payload=m["payload"],
                published_ms=int(m["published_ms"]),
            )
        )
    return out


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
