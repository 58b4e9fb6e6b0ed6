"""Tests: a database every worker process can open, fast hashers, test tasks.

tests/conftest.py starts a redis-server and points TASKS and CACHES at it.
"""

from __future__ import annotations

import json
import os
import tempfile

from settings import database
from settings.base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-not-secret"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# JOBS_TEST_DATABASE picks the database: "sqlite" (the default), "postgres" (a
# cluster of its own that tests/conftest.py starts and fills in here), or a
# postgres:// URL of a server you run (the tests create and drop test_<name>).
# DATABASE_URL is ignored: a test run never touches the demo's database.
TEST_DATABASE = os.environ.get("JOBS_TEST_DATABASE", "sqlite")
if TEST_DATABASE == "sqlite":
    # Worker subprocesses open the test database by path, so it must be a file;
    # one per test session, so that two sessions on one machine don't share it.
    _db = os.environ.get("DATABASE_PATH") or os.path.join(
        tempfile.gettempdir(), f"jobs-test-{os.getpid()}.sqlite3"
    )
    DATABASES["default"] = database.sqlite(_db)  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": _db}  # noqa: F405
elif TEST_DATABASE == "postgres":
    DATABASES["default"] = database.postgres("postgres://postgres@127.0.0.1/jobs")  # noqa: F405
else:
    DATABASES["default"] = database.postgres(TEST_DATABASE)  # noqa: F405

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
TASKS = {
    "default": {
        "BACKEND": "jobs.backend.JobsBackend",
        # JOBS_TEST_QUEUES='[]' gives worker processes Django's "any queue".
        "QUEUES": json.loads(
            os.environ.get("JOBS_TEST_QUEUES", '["default", "reports", "high", "low"]')
        ),
        "OPTIONS": {
            "REDIS_URL": REDIS_URL,
            "IMPORTS": ["tests.tasks", "tests.celery_tasks"],
            # Fault tests tune worker processes (a short LEASE...) through this.
            **json.loads(os.environ.get("JOBS_TEST_OPTIONS", "{}")),
        },
    }
}
CACHES["default"] = redis_cache(REDIS_URL)  # noqa: F405
# Schedule tests that prove live changes need the periodic reconcile out of the way.
JOBS_SCHEDULES_RECONCILE = float(os.environ.get("JOBS_TEST_RECONCILE", "30"))

LOGGING["loggers"]["jobs"]["level"] = "WARNING"  # noqa: F405
