"""DATABASES["default"] from the environment: SQLite by default, PostgreSQL by URL.

    DATABASE_URL=postgres://user:password@host:5432/name?sslmode=require
    DATABASE_URL=postgresql:///name?host=/var/run/postgresql    (a unix socket)

Query parameters other than `host` go to the driver (psycopg) as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from django.core.exceptions import ImproperlyConfigured

SCHEMES = ("postgres", "postgresql")


def sqlite(path: str | Path) -> dict[str, Any]:
    """A SQLite file that a web server and workers share."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # The web server and workers share the file: WAL lets readers run while
        # one writes, IMMEDIATE transactions avoid "database is locked" upgrades.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def postgres(url: str) -> dict[str, Any]:
    """The PostgreSQL database a postgres:// URL names (libpq's URI form)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with postgres:// or postgresql://, not {url!r}"
        )
    options = dict(parse_qsl(parts.query))
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"DATABASE_URL has a bad port: {url!r}") from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": options.pop("host", unquote(parts.hostname or "")),
        "PORT": str(port or ""),
        "OPTIONS": options,
    }


def from_env(url: str | None, path: str | Path) -> dict[str, Any]:
    """PostgreSQL when `url` (DATABASE_URL) is set, else SQLite at `path`."""
    return postgres(url) if url else sqlite(path)


def url(db: dict[str, Any]) -> str:
    """The URL of a PostgreSQL settings dict: postgres() inverted."""
    login = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        login += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or ""
    options = {k: str(v) for k, v in (db.get("OPTIONS") or {}).items()}
    if host.startswith("/"):  # a unix socket's directory
        options["host"], host = host, ""
    elif ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{login}@{host}" if login else host
    if db.get("PORT"):
        netloc += f":{db['PORT']}"
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{netloc}/{quote(db['NAME'], safe='')}{query}"
