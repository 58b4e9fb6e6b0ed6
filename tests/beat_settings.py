"""The test settings with the Celery project's database as the alias "celery"
(a SQLite file made by tests/beat_tables.py, named by JOBS_TEST_BEAT_DB)."""

from __future__ import annotations

import os

from settings.test import *  # noqa: F403
from settings.test import DATABASES

DATABASES = {
    **DATABASES,
    "celery": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("JOBS_TEST_BEAT_DB", ":memory:"),
    },
}
