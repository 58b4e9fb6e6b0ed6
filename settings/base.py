"""Settings shared by every environment, configured from the environment.

REDIS_URL          the queue and result store (default redis://127.0.0.1:6379/0)
DATABASE_URL       a PostgreSQL database (postgres://user:password@host:port/name);
                   unset: SQLite (see settings.database)
DATABASE_PATH      the SQLite file without DATABASE_URL (default .run/db.sqlite3)
DJANGO_SECRET_KEY  required when DEBUG is off
DJANGO_DEBUG       "1" / "0"
DJANGO_ALLOWED_HOSTS comma-separated
TIME_ZONE          default UTC
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from settings import database

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("RUN_DIR", BASE_DIR / ".run"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = [
    h
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
    if h
]
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "jobs",
    "webproject",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webproject.urls"
ASGI_APPLICATION = "webproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database.from_env(
        os.environ.get("DATABASE_URL"),
        os.environ.get("DATABASE_PATH", RUN_DIR / "db.sqlite3"),
    )
}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

TASKS = {
    "default": {
        "BACKEND": "jobs.backend.JobsBackend",
        "QUEUES": ["default", "reports"],
        "OPTIONS": {"REDIS_URL": REDIS_URL},
    }
}


def redis_cache(url: str) -> dict[str, Any]:
    """A Django RedisCache on `url`, a Sentinel URL included."""
    options = {"serializer": "jobs.serialization.CacheSerializer"}  # never pickle
    if url.startswith("redis+sentinel://"):  # the master, found by the sentinels
        options["pool_class"] = "jobs.redis.sentinel.SentinelPool"
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # A list: a Sentinel URL's commas would split a string into servers.
        "LOCATION": [url],
        "KEY_PREFIX": "cache",
        "OPTIONS": options,
    }


CACHES = {"default": redis_cache(REDIS_URL)}

_VALIDATORS = "django.contrib.auth.password_validation."
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": _VALIDATORS + name}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = RUN_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)-7s %(name)s %(message)s"},
    },
    "filters": {"debug_off": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "console_debug_off": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["debug_off"],
            "level": "ERROR",
        },
    },
    "loggers": {
        "jobs": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.tasks": {
            "handlers": ["console"],
            "level": "WARNING",
            "propagate": False,
        },
        # A 500's traceback: Django's own logging prints it only with DEBUG on
        # (and mails ADMINS with it off, which still happens: it propagates).
        "django.request": {"handlers": ["console_debug_off"]},
    },
}
