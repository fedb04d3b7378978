"""session_store_redis: the session-store Redis module (SESSION.*) from Python.

- ``session_commands(client)``: one method per SESSION command on a redis-py client (sync,
  asyncio, cluster), typed results, the same on RESP2 and RESP3.
- ``session_store_redis.django``: a Django session engine (``SESSION_ENGINE``) and a middleware
  recording each request as an activity event in the round trip that loads the session.
"""

from .commands import AsyncSessionCommands, SessionCommands, session_commands, touch_args
from .types import CatalogInfo, GroupInfo, Notification, PageView, Stats, Touch

__all__ = [
    "AsyncSessionCommands",
    "CatalogInfo",
    "GroupInfo",
    "Notification",
    "PageView",
    "SessionCommands",
    "Stats",
    "Touch",
    "session_commands",
    "touch_args",
]

__version__ = "0.1.0"
