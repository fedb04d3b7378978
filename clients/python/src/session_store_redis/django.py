"""A Django session engine on the session-store module, and a middleware recording activity.

    SESSION_ENGINE = "session_store_redis.django"
    SESSION_STORE_URL = "redis://127.0.0.1:6379/0"
    MIDDLEWARE = [..., "django.contrib.sessions.middleware.SessionMiddleware",
                  "session_store_redis.django.ActivityMiddleware", ...]

Storage: one native session per Django session at ``SESSION_STORE_PREFIX + session_key``; each
key of the session dict is one field, its value encoded by ``SESSION_SERIALIZER`` (so other
services and ``SESSION.INFO`` see the fields, and a save writes only the fields that changed:
two requests changing different keys do not lose each other's writes).

Settings (all optional):
- ``SESSION_STORE_URL``: the server (default ``redis://127.0.0.1:6379/0``).
- ``SESSION_STORE_CLUSTER``: True for Redis Cluster (``RedisCluster.from_url``).
- ``SESSION_STORE_PROTOCOL``: 2 or 3 (default 3).
- ``SESSION_STORE_PREFIX``: key prefix (default ``session:``).
- ``SESSION_STORE_MAXAGE``: absolute lifetime in seconds from creation (default the module's
  maximum, 315360000: Django has no absolute lifetime, and the module's own ``default-maxage``
  would otherwise end sessions after a day).
- ``SESSION_STORE_USER_KEY``: the session key naming the principal for the module's per-user
  index (default ``_auth_user_id``, what ``django.contrib.auth`` stores): "log out everywhere".
- ``SESSION_STORE_ACTIVITY``: dotted path of ``f(request) -> (item, categories) | None``, the
  event ``ActivityMiddleware`` records (default: the request path, no categories).

Expiry: ``get_expiry_age()`` at each save becomes the session's ``IDLE`` (Django's integer
expiry is "seconds of inactivity"; the module slides it on every recorded request). A datetime
expiry is also checked when the session loads, so activity never carries it past that time.
``clear_expired`` has nothing to do: the server expires sessions itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone
from django.utils.module_loading import import_string

from .commands import SessionCommands
from .types import Touch

MAX_SECONDS = 315360000  # the module's IDLE/MAXAGE ceiling
_clients: dict[tuple[Any, ...], Any] = {}


def client() -> Any:
    """The redis-py client the engine uses (one per configuration, shared by all requests)."""
    url = getattr(settings, "SESSION_STORE_URL", "redis://127.0.0.1:6379/0")
    cluster = bool(getattr(settings, "SESSION_STORE_CLUSTER", False))
    protocol = int(getattr(settings, "SESSION_STORE_PROTOCOL", 3))
    ident = (url, cluster, protocol)
    c = _clients.get(ident)
    if c is None:
        if cluster:
            from redis.cluster import RedisCluster

            c = RedisCluster.from_url(url, protocol=protocol)
        else:
            c = redis.Redis.from_url(url, protocol=protocol)
        _clients[ident] = c
    return c


def commands() -> SessionCommands:
    """The SESSION.* commands on the engine's client (for catalogs, notifications, admin)."""
    return SessionCommands(client())


def prefix() -> str:
    return getattr(settings, "SESSION_STORE_PREFIX", "session:")


def logout_everywhere(user: Any) -> int:
    """Delete every session of ``user`` (a user object, or its primary key): the count."""
    principal = getattr(user, "pk", user)
    return commands().revoke(str(principal))


def notify_group(group: str, id: str, payload: Any, **options: Any) -> bool:
    """Publish one notification to every session in ``group`` (SESSION.NOTIFYGROUP)."""
    return commands().notifygroup(group, id, payload, **options)


def _expired_datetime(value: Any) -> bool:
    """A ``set_expiry(datetime)`` value (ISO text) that is in the past."""
    if not isinstance(value, str):
        return False
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return False
    now = timezone.now()
    if timezone.is_naive(when) != timezone.is_naive(now):
        when = timezone.make_aware(when) if timezone.is_naive(when) else timezone.make_naive(when)
    return when <= now


class SessionStore(SessionBase):
    """Django's session API on SESSION.TOUCH / GET / ROTATE."""

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._stored: dict[str, bytes] = {}  # fields as last loaded or saved (for the diff)
        self.activity: Touch | None = None  # the TOUCH reply of the recorded page view

    # --- helpers -------------------------------------------------------------------------

    @property
    def _cmd(self) -> SessionCommands:
        return commands()

    @classmethod
    def redis_key(cls, session_key: str) -> str:
        return prefix() + session_key

    def _dumps(self, value: Any) -> bytes:
        data = self.serializer().dumps(value)
        return data if isinstance(data, bytes) else str(data).encode("utf-8")

    def _decode_fields(self, raw: dict[bytes, bytes]) -> dict[str, Any] | None:
        serializer = self.serializer()
        session: dict[str, Any] = {}
        stored: dict[str, bytes] = {}
        try:
            for name, value in raw.items():
                key = name.decode("utf-8") if isinstance(name, bytes) else name
                session[key] = serializer.loads(value)
                stored[key] = value if isinstance(value, bytes) else value.encode("utf-8")
        except Exception as e:
            # Like SessionBase.decode: a corrupt session is an empty one, and worth a log line.
            if isinstance(e, SuspiciousOperation):
                logger = logging.getLogger(f"django.security.{e.__class__.__name__}")
                logger.warning(str(e))
            return None
        self._stored = stored
        return session

    def _principal(self, data: dict[str, Any]) -> str | None:
        user_key = getattr(settings, "SESSION_STORE_USER_KEY", "_auth_user_id")
        value = data.get(user_key) if user_key else None
        return None if value is None else str(value)

    def _lifetimes(self) -> tuple[int, int]:
        maxage = getattr(settings, "SESSION_STORE_MAXAGE", None) or MAX_SECONDS
        maxage = max(1, min(int(maxage), MAX_SECONDS))
        age = self.get_expiry_age()
        return min(age, MAX_SECONDS), maxage

    # --- SessionBase ---------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        key = self.session_key
        raw = self._cmd.get(self.redis_key(key)) if key else None
        session = self._decode_fields(raw) if raw is not None else None
        return self._loaded(session)

    def _loaded(self, session: dict[str, Any] | None) -> dict[str, Any]:
        if session is not None and _expired_datetime(session.get("_session_expiry")):
            if self.session_key:
                self._cmd.client.delete(self.redis_key(self.session_key))
            session = None
        if session is None:
            self._session_key = None
            self._stored = {}
            return {}
        return session

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        return bool(self._cmd.client.exists(self.redis_key(session_key)))

    def create(self) -> None:
        for _ in range(10000):
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key.")

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        key = self.redis_key(self.session_key)
        idle, maxage = self._lifetimes()
        if idle <= 0:  # an expiry in the past: the session ends now
            self._cmd.client.delete(key)
            self._stored = {}
            return
        encoded = {name: self._dumps(value) for name, value in data.items()}
        sets = {n: v for n, v in encoded.items() if self._stored.get(n) != v}
        dels = [n for n in self._stored if n not in encoded]
        user = self._principal(data)
        if must_create:
            # Create-only: a bare TOUCH creates the session or finds one there (new = 0, a
            # colliding key: refuse, leaving its fields alone); the fields follow.
            if sets:
                created = self._cmd.touch(key)
            else:
                created = self._cmd.touch(key, idle=idle, maxage=maxage, user=user)
            if created is None or not created.new:
                raise CreateError
            if not sets:
                self._stored = encoded
                return
        # XX: a session deleted meanwhile (logout elsewhere, expiry) is not resurrected.
        done = self._cmd.touch(
            key, xx=True, idle=idle, maxage=maxage, user=user, fields=sets, delete=dels
        )
        if done is None:
            raise UpdateError
        self._stored = encoded

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self._cmd.client.delete(self.redis_key(session_key))
        if session_key == self.session_key:
            self._stored = {}

    def cycle_key(self) -> None:
        """A new session key keeping the data AND the activity: SESSION.ROTATE moves the session
        with its sketches, expiry and user-index entry (against session fixation)."""
        data = self._session
        old = self.session_key
        if old is None or not self._stored:
            # Nothing stored yet: a fresh key, saved with the data (Django's own behaviour).
            self.create()
            self._session_cache = data
            if old:
                self.delete(old)
            return
        for _ in range(100):
            new = self._get_new_session_key()
            try:
                moved = self._cmd.rotate(self.redis_key(old), self.redis_key(new))
            except redis.ResponseError as e:
                if "target exists" in str(e):
                    continue
                if "CROSSSLOT" not in str(e):
                    raise
                moved = self._move_across_slots(old, new)
            except redis.exceptions.RedisClusterException:
                moved = self._move_across_slots(old, new)
            if not moved:  # gone meanwhile: start over with the data in hand
                self._stored = {}
                self.create()
            else:
                self._session_key = new
            self._session_cache = data
            self.modified = True
            return
        raise RuntimeError("Unable to rotate the session key.")

    def _move_across_slots(self, old: str, new: str) -> bool:
        """Cluster: the new key lives in another slot, where ROTATE cannot go. DUMP + RESTORE
        (with the remaining TTL) + DEL keeps the session's whole state, in three commands."""
        c = self._cmd.client
        src = self.redis_key(old)
        payload = c.dump(src)
        ttl = c.pttl(src)
        if payload is None or ttl is None or ttl < 0:
            return False
        c.restore(self.redis_key(new), ttl, payload)
        c.delete(src)
        return True

    async def acycle_key(self) -> None:
        await sync_to_async(self.cycle_key)()

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: the server expires sessions by itself."""

    # --- Activity ------------------------------------------------------------------------

    def record(self, item: Any, categories: Iterable[Any] = ()) -> Touch | None:
        """Record a page view on this session, loading it in the same command (TOUCH XX ...
        EVENT ... WITHFIELDS). Nothing happens for a
        visitor without a session (no orphan sessions); a stale cookie becomes no session."""
        if self.session_key is None:
            return None
        key = self.redis_key(self.session_key)
        if hasattr(self, "_session_cache"):
            # Already loaded: only the event.
            self.activity = self._cmd.touch(key, xx=True, event=item, categories=list(categories))
            return self.activity
        view = self._cmd.page_view(key, event=item, categories=list(categories))
        session = self._decode_fields(view.fields) if view.fields is not None else None
        self._session_cache = self._loaded(session)
        self.accessed = True
        self.activity = view.touch if self.session_key else None
        return self.activity


def _default_activity(request: Any) -> tuple[str, Iterable[str]] | None:
    return request.path, ()


class Intelligence:
    """``request.intelligence``: what the module knows about this visitor's session."""

    def __init__(self, request: Any) -> None:
        self.request = request

    @property
    def _session(self) -> SessionStore | None:
        s = getattr(self.request, "session", None)
        return s if isinstance(s, SessionStore) else None

    @property
    def key(self) -> str | None:
        s = self._session
        return s.redis_key(s.session_key) if s is not None and s.session_key else None

    @property
    def activity(self) -> Touch | None:
        """This request's TOUCH reply (events, unique, seen_before, pending, ...), or None."""
        s = self._session
        return s.activity if s is not None else None

    def surface(self, catalog: str, count: int = 10, **options: Any) -> list:
        """Unseen content from ``catalog`` ranked by this visitor's interests (the catalog's
        best items for a visitor without a session)."""
        key = self.key or prefix() + "\x00anonymous"
        return commands().surface(key, catalog, count=count, **options)

    def seen(self, *items: Any) -> list:
        return commands().seen(self.key, *items) if self.key else [False] * len(items)

    def enrich(self, **options: Any) -> dict | None:
        return commands().enrich(self.key, **options) if self.key else None

    def inbox(self, **options: Any) -> list:
        return commands().inbox(self.key, **options) if self.key else []

    def sessions(self) -> list:
        """The signed-in user's live sessions (keys without the prefix)."""
        s = self._session
        user = s._principal(s._session) if s is not None and s.session_key else None
        if user is None:
            return []
        p = prefix().encode()
        keys = commands().sessions(user)
        return [k[len(p) :].decode() if k.startswith(p) else k.decode() for k in keys]

    def logout_everywhere(self) -> int:
        """Delete every session of the signed-in user, this one included: the count."""
        s = self._session
        user = s._principal(s._session) if s is not None and s.session_key else None
        if user is None:
            return 0
        n = commands().revoke(user)
        s.flush() if s is not None else None
        return n


class ActivityMiddleware:
    """Records each request as an activity event of its session, in the round trip that loads
    the session, and sets ``request.intelligence``. Put it after SessionMiddleware."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        path = getattr(settings, "SESSION_STORE_ACTIVITY", None)
        self.activity = import_string(path) if path else _default_activity

    def __call__(self, request: Any) -> Any:
        session = getattr(request, "session", None)
        if isinstance(session, SessionStore):
            spec = self.activity(request)
            if spec:
                item, categories = spec
                session.record(item, categories)
        request.intelligence = Intelligence(request)
        return self.get_response(request)
