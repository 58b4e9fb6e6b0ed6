"""settings.database: DATABASE_URL to DATABASES and back (worker subprocesses
of the tests get the URL of the test database)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from settings import database


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://postgres@127.0.0.1:5433/test_jobs",
            {"NAME": "test_jobs", "USER": "postgres", "PASSWORD": ""}
            | {"HOST": "127.0.0.1", "PORT": "5433", "OPTIONS": {}},
        ),
        (
            "postgresql://u%40x:p%3Aw%2F@db.example/my%20db?sslmode=require",
            {"NAME": "my db", "USER": "u@x", "PASSWORD": "p:w/"}
            | {"HOST": "db.example", "PORT": "", "OPTIONS": {"sslmode": "require"}},
        ),
        (
            "postgres:///jobs?host=/var/run/postgresql",
            {"NAME": "jobs", "USER": "", "PASSWORD": ""}
            | {"HOST": "/var/run/postgresql", "PORT": "", "OPTIONS": {}},
        ),
        (
            "postgres://[::1]:5432",
            {"NAME": "postgres", "USER": "", "PASSWORD": ""}
            | {"HOST": "::1", "PORT": "5432", "OPTIONS": {}},
        ),
    ],
)
def test_postgres_urls_and_back(url, expected):
    db = database.postgres(url)
    assert db == {"ENGINE": "django.db.backends.postgresql", **expected}
    assert database.postgres(database.url(db)) == db


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "must start with postgres:// or postgresql://"),
        ("postgres://db:port/x", "bad port"),
    ],
)
def test_bad_urls_are_configuration_errors(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        database.postgres(url)


def test_sqlite_without_a_url():
    assert database.from_env(None, "/tmp/x.sqlite3")["NAME"] == "/tmp/x.sqlite3"
    assert database.from_env("", "/tmp/x.sqlite3")["ENGINE"].endswith("sqlite3")
    assert database.from_env("postgres://h/x", "/tmp/x")["ENGINE"].endswith(
        "postgresql"
    )
