"""django-jobs, as a Django project uses it: tasks declared with Django's
`@task`, enqueued with `await task.aenqueue()` (asyncio, on uvloop) or
`task.enqueue()` (sync code), run by `manage.py jobs_worker`, results stored
in the default Redis cache on the queue's Redis (always on).

Runs from the project's own virtualenv (.venv). Settings: bench_settings.py;
tasks: bench_tasks.py.

Run: python jobs_bench.py run --config jobs-c100 [--n 10000]
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SYSTEM = "django-jobs"
HERE = Path(__file__).resolve().parent
# The checkout whose `jobs` runs: this one, or another revision's (bench/ab).
ROOT = Path(os.environ.get("BENCH_JOBS_ROOT") or HERE.parent)
MANAGE = ROOT / "manage.py"
SETTINGS = "bench_settings"
WAIT_TIMEOUT = 30.0  # seconds a result-wait may take before it counts as missing

# The harness copies this process's environment into the workers' and the
# producers': without it `manage.py` would fall back to the example project's
# settings (and its Redis on 6379).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
# Producers run `jobs_bench.py produce`, whose `import jobs` would otherwise find
# the .venv's editable install (this checkout), not ROOT's: bench/ab's enqueue
# figures then measured one and the same `jobs` for both revisions.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)

CONFIGS = {
    # One worker process, 100 jobs at once (arq-mj100's max_jobs), coroutine tasks.
    "jobs-c100": {"concurrency": 100, "procs": 1, "task": "async"},
    # The same worker running plain-function tasks (its thread pool, 100 threads).
    "jobs-c100-sync": {"concurrency": 100, "procs": 1, "task": "sync"},
    # Plain functions in 8 threads, and in 8 child processes (`--pool processes`,
    # killed past their timeout): what the process pool costs a job.
    "jobs-c8-sync": {"concurrency": 8, "procs": 1, "task": "sync"},
    "jobs-c8-sync-processes": {
        "concurrency": 8,
        "procs": 1,
        "task": "sync",
        "pool": "processes",
    },
    # Two worker processes (`jobs_worker -p 2`), one per core.
    "jobs-c100-p2": {"concurrency": 100, "procs": 2, "task": "async"},
    # The worker's defaults (-c 10), coroutine tasks.
    "jobs-default": {"concurrency": 10, "procs": 1, "task": "async"},
    # arq's own worker and loop running the same Django tasks
    # (`arq jobs.arq.WorkerSettings`, max_jobs 100): the price of arq's loop.
    "jobs-arq-mj100": {"concurrency": 100, "procs": 1, "task": "async", "arq": True},
}
BATCH_KIND = "asyncio.gather of 100 aenqueue()"
WAITS = True  # producers wait with `await result.aget()` / `result.get()`


def _env(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    env.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    path = env.get("PYTHONPATH", "")
    # bench/ (the settings and tasks) and the project root (`jobs`).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (path, str(HERE), str(ROOT)) if p)
    return env


def prepare(env: dict[str, str]) -> None:
    """Create the bench database's tables (the workers read the schedules)."""
    subprocess.run(
        [sys.executable, str(MANAGE), "migrate", "-v", "0"],
        env=_env(env),
        check=True,
        cwd=ROOT,
    )


def worker_commands(cfg: dict) -> list[list[str]]:
    if cfg.get("arq"):
        env = f"JOBS_ARQ_MAX_JOBS={cfg['concurrency']}"
        return [["env", env, sys.executable, "-m", "arq", "jobs.arq.WorkerSettings"]]
    cmd = [sys.executable, str(MANAGE), "jobs_worker", "-c", str(cfg["concurrency"])]
    cmd += ["-Q", "default", "-l", "warning"]
    if cfg.get("pool"):
        cmd += ["--pool", cfg["pool"]]
    if cfg["procs"] > 1:
        # One supervisor forking the children, as a user runs `-p N`.
        cmd += ["--processes", str(cfg["procs"])]
    return [cmd]


def _tasks(cfg: dict) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()
    import bench_tasks

    return bench_tasks.pick(cfg["task"])


class _Tasks:
    def __init__(self, tasks: dict[str, Any]) -> None:
        self.noop = tasks["noop"]
        self.lat_task = tasks["lat"]
        self.waited = tasks["waited"]


class Producer(_Tasks):
    """An async view's path: `await task.aenqueue()`, `await result.aget()`."""

    async def single(self) -> None:
        await self.noop.aenqueue()

    async def lat(self, i: int) -> None:
        await self.lat_task.aenqueue(i)

    async def wait(self, i: int) -> float:
        result = await self.waited.aenqueue(i)
        return await result.aget(timeout=WAIT_TIMEOUT)

    async def close(self) -> None:
        await _connections().aclose_all()


def _connections() -> Any:
    """jobs' connection module, wherever the checkout being measured keeps it
    (jobs.redis.connections; jobs.connections before the layout of stop 10)."""
    try:
        from jobs.redis import connections
    except ImportError:
        from jobs import connections  # type: ignore[no-redef]
    return connections


async def make_producer(cfg: dict) -> Producer:
    return Producer(_tasks(cfg))


class SyncProducer(_Tasks):
    """Sync code's path (a WSGI view, a management command): `task.enqueue()`."""

    def single(self) -> None:
        self.noop.enqueue()

    def lat(self, i: int) -> None:
        self.lat_task.enqueue(i)

    def wait(self, i: int) -> float:
        return self.waited.enqueue(i).get(timeout=WAIT_TIMEOUT)

    def close(self) -> None:
        _connections().close_all()


def make_sync_producer(cfg: dict) -> SyncProducer:
    return SyncProducer(_tasks(cfg))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import harness

    harness.main("jobs_bench")
