"""A minimal Django site on the session-store engine (no database: sessions live in Redis)."""

import os

SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "demo.urls"
INSTALLED_APPS = ["django.contrib.sessions"]
DATABASES = {}
USE_TZ = True

# --- The session engine and the activity middleware ----------------------------------------
SESSION_ENGINE = "session_store_redis.django"
SESSION_STORE_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SESSION_STORE_PROTOCOL = int(os.environ.get("REDIS_PROTOCOL", "3"))
SESSION_STORE_PREFIX = os.environ.get("SESSION_PREFIX", "demo:django:")
SESSION_STORE_USER_KEY = "user"  # the session key naming the signed-in user ("log out everywhere")
SESSION_STORE_ACTIVITY = "demo.views.activity"  # what each request records
SESSION_COOKIE_AGE = 1800  # 30 minutes of inactivity

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "session_store_redis.django.ActivityMiddleware",
]
