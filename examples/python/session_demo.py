#!/usr/bin/env python3
"""The session store from Python with redis-py.

One visitor's session: page views, reading fields, "have they seen it?", enrichment with
attributes from other services, content they have not seen yet, and a group notification.

    REDIS_URL=redis://127.0.0.1:6379 python session_demo.py

Every reply is checked: the script exits non-zero on anything unexpected. REDIS_PROTOCOL=2|3
picks the protocol (default 3: the module's maps arrive as dicts; with 2 they arrive as flat
name/value lists, which `as_map` turns into dicts).
"""

import json
import os
import sys
import uuid

import redis


def check(ok, what):
    """Fail loudly (exit 1) on an unexpected reply. Unlike `assert`, `python -O` keeps it."""
    if not ok:
        sys.exit(f"FAILED: {what}")


def as_map(reply):
    """A module map reply as a dict, whatever the protocol.

    RESP3: redis-py already gives a dict. RESP2: a flat [name, value, name, value, ...] list.
    """
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2]))


def main():
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    protocol = int(os.environ.get("REDIS_PROTOCOL", "3"))
    r = redis.Redis.from_url(url, protocol=protocol, decode_responses=True)
    cmd = r.execute_command  # redis-py sends module commands as they are

    # Unique names per run, so the demo can run against a shared server, any number of times.
    run = uuid.uuid4().hex[:8]
    key = f"demo:py:{run}:sess"  # in an application: the session id from the cookie
    catalog = f"demo:py:{run}:articles"
    group = f"demo:py:{run}:beta"
    print(f"redis-py {redis.__version__}, RESP{protocol}, session {key}")

    try:
        # --- Page views: ONE command per request creates/refreshes the session, writes fields,
        # records what was viewed (and its categories) and slides the idle expiry.
        views = [
            # (item viewed, its categories, expected events, unique, seen_before)
            ("article:1", ["hockey", "sports"], 1, 1, 0),
            ("article:5", ["hockey"], 2, 2, 0),
            ("article:5", ["hockey"], 3, 2, 1),  # a re-read: seen_before = 1
        ]
        for i, (item, cats, events, unique, seen_before) in enumerate(views):
            args = ["SESSION.TOUCH", key]
            if i == 0:  # the login page: lifetime, principal and some session data
                args += ["IDLE", 1800, "USER", "alice", "SET", 2, "theme", "dark", "cart", 3]
            args += ["EVENT", item, "CATEGORIES", len(cats), *cats]
            page = as_map(cmd(*args))
            print(f"TOUCH {item}: {page}")
            check(page["new"] == (1 if i == 0 else 0), "new")
            check(page["events"] == events, "events")
            check(page["unique"] == unique, "unique (a HyperLogLog estimate, exact this small)")
            check(page["seen_before"] == seen_before, "seen_before")
            check(0 < page["ttl_ms"] <= 1_800_000, "ttl_ms slides to the 30 min idle timeout")
            check(page["pending"] == 0, "no notification yet")

        # --- Read fields (no TTL renewal): all of them as a map, or named ones as a list.
        fields = as_map(cmd("SESSION.GET", key))
        print(f"GET: {fields}")
        check(fields == {"theme": "dark", "cart": "3"}, "all fields")
        some = cmd("SESSION.GET", key, "theme", "missing")
        print(f"GET theme missing: {some}")
        check(some == ["dark", None], "named fields, None where missing")

        # --- Has the user seen these? 0 is certain (Bloom filter, no false negatives).
        seen = cmd("SESSION.SEEN", key, "article:1", "article:2")
        print(f"SEEN article:1 article:2: {seen}")
        check(seen == [1, 0], "seen flags")

        # --- Enrich: merge attributes from other services (JSON merge patch), join a group,
        # and get the calculated data back as one JSON document.
        attrs = {"churn_risk": 0.12, "geo": {"country": "SE"}}
        doc = json.loads(
            cmd("SESSION.ENRICH", key, "ATTRS", json.dumps(attrs), "JOIN", 1, group)
        )
        print(f"ENRICH: interests={doc['interests']} segments={doc['segments']}")
        check(doc["events"] == 3 and doc["unique_items"] == 2, "activity counts")
        check(doc["interests"][0]["category"] == "hockey", "strongest interest first")
        check(abs(sum(i["weight"] for i in doc["interests"]) - 1) < 1e-6, "weights sum to 1")
        check("interest:hockey" in doc["segments"], "interest segment")
        check(0 <= doc["engagement"] <= 1, "engagement in [0, 1]")
        check(doc["attrs"] == attrs and doc["groups"] == [group], "attrs and groups")

        # --- A catalog of content (module-global, not a key) and what to show this user next.
        items = [
            ("article:1", 5, ["hockey", "sports"]),  # seen: never surfaced
            ("article:2", 3, ["hockey"]),
            ("article:3", 4, ["golf"]),
            ("article:4", 1, ["cooking"]),
            ("article:5", 2, ["hockey"]),  # seen: never surfaced
        ]
        for item, score, cats in items:
            added = cmd("SESSION.CATALOG", "ADD", catalog, item,
                        "SCORE", score, "CATEGORIES", len(cats), *cats, "TTL", 3600)
            check(added == 1, "catalog ADD of a new item replies 1")
        info = as_map(cmd("SESSION.CATALOG", "INFO", catalog))
        print(f"CATALOG INFO: {info}")
        check(info["items"] == 5 and info["categories"] == 4, "catalog info")

        # WITHSCORES: item and score alternate (a float in RESP3, a string in RESP2).
        flat = cmd("SESSION.SURFACE", key, "FROM", catalog, "COUNT", 3, "WITHSCORES")
        picks = [(item, float(score)) for item, score in zip(flat[::2], flat[1::2])]
        print(f"SURFACE: {picks}")
        # article:2 wins: unseen, and in the user's strongest interest.
        check([item for item, _ in picks] == ["article:2", "article:3", "article:4"],
              "unseen items, best first")
        check(picks[0][1] > picks[1][1] > picks[2][1], "scores descending")

        # --- One notification to a whole group: O(1), idempotent by id.
        check(cmd("SESSION.NOTIFYGROUP", group, "promo-1", "50% off", "TTL", 300) == 1,
              "NOTIFYGROUP stores a new id")
        check(cmd("SESSION.NOTIFYGROUP", group, "promo-1", "50% off", "TTL", 300) == 0,
              "NOTIFYGROUP ignores a repeated id")
        page = as_map(cmd("SESSION.TOUCH", key))  # the next request sees it is pending
        check(page["pending"] == 1, "one pending notification")
        inbox = [as_map(n) for n in cmd("SESSION.INBOX", key)]
        print(f"INBOX: {inbox}")
        check(len(inbox) == 1, "one notification delivered")
        check((inbox[0]["group"], inbox[0]["id"], inbox[0]["payload"]) ==
              (group, "promo-1", "50% off"), "notification content")
        check(inbox[0]["published_ms"] > 0, "published_ms")
        check(cmd("SESSION.INBOX", key) == [], "delivered exactly once")
    finally:
        # Tidy up the shared server (the group's notification expires on its own).
        r.delete(key)
        cmd("SESSION.CATALOG", "DROP", catalog)

    print("python example: all replies as expected")


if __name__ == "__main__":
    main()
