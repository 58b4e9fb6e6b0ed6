"""Django settings of the benchmark: django-jobs as a user configures it.

The queue and the results (the default Redis cache on REDIS_URL) live on the
broker Redis the harness starts (BENCH_REDIS_PORT); the jobs' own counters go
to the harness Redis (see jobside.py). The SQLite file (BENCH_DB) holds the
schedules, empty except in the scheduler phase (schedules_bench.py).
"""

import os
import tempfile

import jobside

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-jobs alone (its models need no other app): the worker's memory and
# start-up are the library's, not an example project's.
INSTALLED_APPS = ["jobs"]

DB_PATH = os.environ.get("BENCH_DB") or os.path.join(
    tempfile.gettempdir(), f"jobs-bench-{jobside.LIB_PORT}.sqlite3"
)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DB_PATH,
        # As the example project's settings: workers and writers share the file.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

TASKS = {
    "default": {
        "BACKEND": "jobs.backend.JobsBackend",
        "QUEUES": ["default"],
        "OPTIONS": {"REDIS_URL": jobside.LIB_URL, "IMPORTS": ["bench_tasks"]},
    }
}

# The worker's own logs at WARNING unless the command line says otherwise
# (`jobs_worker -l`); nothing per job is formatted.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
