"""Where a worker process's memory goes: anonymous PSS after each import stage.

A worker's PSS is mostly what it imports before it runs any job. This loads
the stack a layer at a time in a fresh process and prints the anonymous PSS
after each layer (the process's own heap; shared-library pages come on top and
are shared with other Python processes), then loads django-jobs' worker the
way `manage.py jobs_worker` does with the benchmark's settings, in another
fresh process. So the floor of a Django worker on arq is measured, not guessed:

    ../.venv/bin/python memory_floor.py      # from bench/; needs no Redis
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def anon_mb() -> float:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss_Anon:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no Pss_Anon in /proc/self/smaps_rollup (Linux >= 5.9)")


def show(name: str, before: float | None = None) -> float:
    now, modules = anon_mb(), len(sys.modules)
    delta = "" if before is None else f"(+{now - before:4.1f})"
    print(f"{name:56s} {now:5.1f} MB {delta:7s}  {modules} modules")
    return now


def floor() -> None:
    """The stack without django-jobs: asyncio, redis-py, Django, arq."""
    mb = show("interpreter", 0.0)
    import asyncio  # noqa: F401

    import redis.asyncio  # noqa: F401
    import uvloop  # noqa: F401

    mb = show("+ asyncio, uvloop, redis-py (arq's client)", mb)
    import tempfile

    import django
    from django.conf import settings

    db = os.path.join(tempfile.gettempdir(), "memory-floor.sqlite3")
    settings.configure(
        INSTALLED_APPS=[],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}},
    )
    django.setup()  # imports the ORM, HTTP, URL, template and mail machinery
    mb = show("+ django.setup(), no app installed", mb)
    import arq  # noqa: F401

    show("+ arq = the floor of any Django worker on arq", mb)


def worker() -> None:
    """django-jobs' worker process as `manage.py jobs_worker` loads it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")
    sys.path.insert(0, HERE)
    import django

    django.setup()  # the jobs app, its models and checks, the bench tasks
    from django.db import connection

    connection.ensure_connection()  # the scheduler reads its table at start
    import jobs.management.commands.jobs_worker
    import jobs.schedules.scheduler
    import jobs.worker.loop  # noqa: F401

    show("django-jobs' worker, loaded (bench settings)")


def main() -> None:
    import subprocess

    print(f"Python {sys.version.split()[0]}: anonymous PSS, fresh process per part")
    for part in ("floor", "worker"):
        subprocess.run([sys.executable, __file__, part], check=True)


if __name__ == "__main__":
    {"floor": floor, "worker": worker}.get(sys.argv[-1], main)()
