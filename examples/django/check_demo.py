#!/usr/bin/env python3
"""Drives the example site in process (Django's test client, real sessions in Redis): log in,
page views, surfacing, a notification, log out everywhere. Exits non-zero on anything unexpected.

    REDIS_URL=redis://127.0.0.1:6379 REDIS_PROTOCOL=3 python check_demo.py
"""

import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
os.environ.setdefault("SESSION_PREFIX", f"demo:django:{uuid.uuid4().hex[:8]}:")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

from demo import views  # noqa: E402
from session_store_redis.django import commands, notify_group  # noqa: E402


def check(ok, what):
    if not ok:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def main():
    s = commands()
    run = uuid.uuid4().hex[:8]
    views.CATALOG = f"demo:django:{run}:articles"
    for slug, (score, cats) in views.ARTICLES.items():
        s.catalog_add(views.CATALOG, f"article:{slug}", score=score, categories=cats, ttl=600)
    user = f"alice-{run}"
    try:
        laptop, phone = Client(), Client()
        check(laptop.get("/").json() == {"user": None}, "anonymous home page")
        check("sessionid" not in laptop.cookies, "no session for an anonymous visitor")

        laptop.post("/login", {"user": user})
        check(laptop.get("/").json() == {"user": user}, "logged in")
        r1 = laptop.get("/article/rink-report").json()
        r2 = laptop.get("/article/power-play").json()
        r3 = laptop.get("/article/rink-report").json()
        check((r1["events"], r2["events"], r3["events"]) == (1, 2, 3), "page views recorded")
        check(r3["seen_before"] and r3["unique"] == 2, "seen_before on a re-read")

        picks = laptop.get("/recommended").json()["items"]
        check(picks and picks[0] == "article:eagle-putt", f"surfaced unseen content: {picks}")
        check(not {"article:rink-report", "article:power-play"} & set(picks), "never a seen one")

        check(notify_group("demo:django:beta", f"promo-{run}", "Playoffs tonight", ttl=300),
              "notification published")
        got = laptop.get("/inbox").json()["inbox"]
        check([n["payload"] for n in got if n["id"] == f"promo-{run}"] == ["Playoffs tonight"],
              "notification delivered")

        phone.post("/login", {"user": user})
        check(len(s.sessions(user)) == 2, "two sessions for the user")
        revoked = laptop.post("/logout-everywhere").json()["revoked"]
        check(revoked == 2, "log out everywhere revoked both sessions")
        check(phone.get("/").json() == {"user": None}, "the phone is logged out")
        check(s.sessions(user) == [], "no session left")
    finally:
        s.revoke(user)
        s.catalog_drop(views.CATALOG)
    print("django example: all responses as expected")


if __name__ == "__main__":
    main()
