"""The scheduler's cost with many schedules: loading them and applying a change.

With the benchmark's own settings (bench_settings.py, its SQLite file) this
creates N enabled `Schedule` rows (half cron, half interval) and measures:

* in this process, with the worker's own code (jobs.schedules.scheduler.Scheduler):
  - the cold load a worker does at start-up (`Scheduler.load(None)`: read every
    enabled row, validate it into an Entry, compute its next run, fill the
    heap; the parsing caches emptied first, as in a starting worker), split
    into its SQL read, its parsing and its heap updates;
  - the reconcile every JOBS_SCHEDULES_RECONCILE seconds (the same full read
    with nothing changed, and with one row changed by a bulk `update()`);
  - one change: `Schedule.save()` of one row (its queries, the publish after
    the commit) and the worker's reload of that row alone (`load([pk])`);
  - the memory the loaded schedules hold (tracemalloc);
* with a real `jobs_worker` process: start-up to the first job with N
  schedules in the database, the worker's own "read in X ms" log line, its PSS
  once loaded, and one row edited to run 250 ms later: how late that run
  starts (the change reached the running worker through Redis pub/sub).

Run (both Redis instances up, as for the other benches):
    python schedules_bench.py --n 10000 --out results/schedules.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jobside
import psutil
import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")

TASK = "bench_tasks.scheduled"
MARK = 999_999  # the args of the edited row: its run stamps this index
LEAD = 0.25  # seconds between saving the edit and the run it asks for


# --------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------
def cron_of(i: int) -> str:
    """A spread of cron shapes; none fires more than once an hour."""
    minute, hour, weekday = i % 60, (i // 60) % 24, i % 7
    shapes = [
        f"{minute} * * * *",
        f"{minute} {hour} * * *",
        f"{minute} {hour} * * {weekday}",
        f"{minute} {hour} {1 + i % 28} * *",
    ]
    return shapes[i % len(shapes)]


def make_rows(n: int) -> list[Any]:
    from jobs.models import Schedule

    rows = []
    for i in range(n):
        row = Schedule(name=f"bench-{i:05d}", task=TASK, args=[i])
        if i % 2:
            row.cron = cron_of(i)
        else:
            # 5 minutes to 10 hours: a few runs fire during the live phase.
            row.interval = timedelta(minutes=5 * (1 + i % 120))
        rows.append(row)
    return rows


def create_schedules(n: int) -> float:
    """Replace every row with `n` new ones (bulk: no signal per row)."""
    from django.core.management import call_command

    from jobs.models import Schedule

    call_command("migrate", verbosity=0)
    Schedule.objects.all().delete()
    t0 = time.perf_counter()
    Schedule.objects.bulk_create(make_rows(n), batch_size=500)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------
# Measuring helpers
# --------------------------------------------------------------------------
@contextlib.contextmanager
def counted() -> Iterator[dict[str, Any]]:
    """Wall seconds and SQL queries of the block (this thread's connection)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    out: dict[str, Any] = {}
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        yield out
        out["seconds"] = time.perf_counter() - t0
    out["queries"] = len(ctx.captured_queries)


def median_of(samples: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in samples[0].items() if isinstance(v, (int, float))]
    out = {k: statistics.median(s[k] for s in samples) for k in keys}
    out["seconds_min"] = min(s["seconds"] for s in samples)
    out["seconds_max"] = max(s["seconds"] for s in samples)
    out["samples"] = len(samples)
    return out


def new_scheduler() -> Any:
    """A worker's Scheduler, wired to the backend as Scheduler.run() does."""
    from django.tasks import task_backends

    from jobs.schedules.scheduler import Scheduler

    scheduler = Scheduler()
    scheduler.backend = task_backends["default"]
    return scheduler


def in_loop(fn: Callable[..., Any], *args: Any) -> Any:
    # async_to_sync runs the coroutine on a loop of its own and the scheduler's
    # sync_to_async (thread-sensitive) calls back in *this* thread: the
    # queries then land on the connection `counted()` watches.
    from asgiref.sync import async_to_sync

    return async_to_sync(fn)(*args)


# --------------------------------------------------------------------------
# In-process phases (the worker's code, no worker process)
# --------------------------------------------------------------------------
def forget_parsed() -> None:
    """Empty the caches a worker fills as it parses (cron expressions, their
    fields, the days they match, call signatures): each rep starts cold."""
    from jobs.schedules import cron, entries

    for cached in (cron.parse, cron.expand_field, cron.month_days):
        cached.cache_clear()
    entries.call_problem.cache_clear()


def cold_load(reps: int) -> dict[str, Any]:
    """A worker's first read of the database: every row into the heap."""
    samples = []
    for _ in range(reps):
        scheduler = new_scheduler()
        forget_parsed()
        gc.collect()
        with counted() as out:
            in_loop(scheduler.load, None)
        out.update(running=len(scheduler.jobs), heap=len(scheduler.heap))
        samples.append(out)
    return median_of(samples)


def load_parts(reps: int) -> dict[str, Any]:
    """The cold load's parts: SQL + ORM conversion (what values() does), then
    validation + next runs."""
    from django.tasks import task_backends

    from jobs.schedules.sources import read_changes

    alias = task_backends["default"].alias
    reads, changes = [], []
    for _ in range(reps):
        with counted() as out:
            rows = read_values()
        out["rows"] = len(rows)
        reads.append(out)
        forget_parsed()
        with counted() as out:
            found, _ = read_changes(None, {}, alias, datetime.now(UTC))
        out["changes"] = len(found)
        changes.append(out)
    read, total = median_of(reads), median_of(changes)
    return {
        "read_rows": read,
        "read_changes": total,
        "parse_seconds": total["seconds"] - read["seconds"],
    }


def read_values() -> list[Any]:
    """Every enabled row: the query, then Django's converters, as a load does."""
    from jobs.schedules.sources import converted, read_rows

    raw, compiler = read_rows(None)
    return list(converted(compiler, raw))


def held_memory() -> dict[str, float]:
    """Python memory the loaded schedules keep (jobs, heap, fingerprints)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    scheduler = new_scheduler()
    in_loop(scheduler.load, None)
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mb = 2**20
    return {
        "retained_mb": (after - before) / mb,
        "peak_during_load_mb": (peak - before) / mb,
        "schedules": len(scheduler.jobs),
        "bytes_per_schedule": (after - before) / max(1, len(scheduler.jobs)),
    }


def reconcile(scheduler: Any, reps: int) -> dict[str, Any]:
    """The periodic full comparison, nothing changed: its steady cost."""
    samples = []
    for _ in range(reps):
        with counted() as out:
            in_loop(scheduler.load, None)
        samples.append(out)
    return median_of(samples)


def reconcile_one_changed(scheduler: Any, reps: int) -> dict[str, Any]:
    """A bulk update() of one row (no message): the reconcile that finds it."""
    from jobs.models import Schedule

    pk = Schedule.objects.order_by("pk").values_list("pk", flat=True)[0]
    samples = []
    for k in range(reps):
        Schedule.objects.filter(pk=pk).update(args=[-1 - k])
        with counted() as out:
            in_loop(scheduler.load, None)
        out["applied"] = scheduler.jobs[f"db:{pk}"].entry.args == [-1 - k]
        samples.append(out)
    return median_of(samples)


def edit_one(pk: int, minute: int) -> dict[str, Any]:
    """What an admin save of one row costs the web process."""
    from jobs.models import Schedule

    row = Schedule.objects.get(pk=pk)
    with counted() as out:
        row.cron, row.interval = f"{minute} 3 * * *", None
        row.save()  # on_commit (autocommit: at once) publishes the pk
    return out


def one_change(scheduler: Any, reps: int) -> dict[str, Any]:
    """Edit one row, then the worker's reload of that row alone."""
    from jobs.models import Schedule

    pk = Schedule.objects.order_by("pk").values_list("pk", flat=True)[0]
    saves, applies = [], []
    for k in range(reps):
        saves.append(edit_one(pk, minute=k % 60))
        with counted() as out:
            in_loop(scheduler.load, [pk])
        job = scheduler.jobs[f"db:{pk}"]
        out["applied"] = job.entry.timing.fields.expression == f"{k % 60} 3 * * *"
        applies.append(out)
    apply = median_of(applies)
    apply["all_applied"] = all(a["applied"] for a in applies)
    return {"save": median_of(saves), "worker_apply": apply, "pk": pk}


def in_process(n: int, reps: int) -> dict[str, Any]:
    res: dict[str, Any] = {"cold_load": cold_load(reps)}
    res["cold_load_parts"] = load_parts(reps)
    res["memory"] = held_memory()
    scheduler = new_scheduler()
    in_loop(scheduler.load, None)
    res["reconcile"] = reconcile(scheduler, reps)
    res["reconcile_one_changed"] = reconcile_one_changed(scheduler, reps)
    res["one_change"] = one_change(scheduler, reps)
    return res


# --------------------------------------------------------------------------
# Live phase: a real worker process
# --------------------------------------------------------------------------
class LogWatch(threading.Thread):
    """Reads the worker's output; notes when the schedules were loaded."""

    def __init__(self, proc: subprocess.Popen, log_path: Path) -> None:
        super().__init__(daemon=True)
        self.proc, self.log_path = proc, log_path
        self.loaded_at: float | None = None
        self.loaded_line = ""
        self.loaded = threading.Event()

    def run(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for line in self.proc.stdout:
                log.write(line)
                text = line.decode(errors="replace")
                if "schedules:" in text and "running" in text and not self.loaded_at:
                    self.loaded_at = time.monotonic()
                    self.loaded_line = text.strip()
                    self.loaded.set()


def spawn_worker(env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "manage.py"), "jobs_worker", "-c", "100"]
    cmd += ["-Q", "default", "-l", "info"]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, by PID: only the worker this script started."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def wall_to_monotonic(at: datetime) -> float:
    return at.timestamp() - time.time() + time.monotonic()


def live_edit(h: redis.Redis) -> dict[str, Any]:
    """Edit one row to run LEAD s from now; when does the worker run it?"""
    from jobs.models import Schedule

    row = Schedule.objects.order_by("-pk")[0]
    due = datetime.now(UTC) + timedelta(seconds=LEAD)
    row.cron, row.interval, row.clocked_time = "", None, due
    row.args = [MARK]
    t_save = time.monotonic()
    row.save()
    t_saved = time.monotonic()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stamp = h.hget(jobside.K_LAT, str(MARK))
        if stamp is not None:
            start = float(stamp)
            return {
                "lead_s": LEAD,
                "save_ms": (t_saved - t_save) * 1e3,
                "run_started_after_due_ms": (start - wall_to_monotonic(due)) * 1e3,
                "save_to_run_start_ms": (start - t_save) * 1e3,
            }
        time.sleep(0.005)
    return {"lead_s": LEAD, "error": "the edited schedule did not run within 10 s"}


def live(n: int, log_path: Path) -> dict[str, Any]:
    """Start-up, load and one live edit with a real jobs_worker process."""
    from bench_tasks import noop

    lib = redis.Redis.from_url(jobside.LIB_URL)
    h = redis.Redis.from_url(jobside.HARNESS_URL)
    lib.flushall()
    h.flushall()
    env = dict(os.environ, BENCH_N="1")  # its one noop job stamps bench:done
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(ROOT)) if p)
    noop.enqueue()
    t_spawn = time.monotonic()
    proc = spawn_worker(env)
    watch = LogWatch(proc, log_path)
    watch.start()
    res: dict[str, Any] = {"schedules": n}
    try:
        done = h.brpop([jobside.K_DONE], timeout=30)
        if done:
            res["startup_to_first_job_s"] = float(done[1]) - t_spawn
        if watch.loaded.wait(timeout=120) and watch.loaded_at is not None:
            res["spawn_to_loaded_s"] = watch.loaded_at - t_spawn
            res["loaded_log_line"] = watch.loaded_line
        time.sleep(1.0)  # let the first full read and its writes settle
        mem = psutil.Process(proc.pid).memory_full_info()
        res["worker_pss_mb"] = mem.pss / 2**20
        res["worker_rss_mb"] = mem.rss / 2**20
        res["edit"] = live_edit(h)
    finally:
        stop_worker(proc)
        watch.join(timeout=5)
    return res


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(prog="schedules_bench.py")
    ap.add_argument("--n", type=int, default=10_000, help="schedules")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per measure")
    ap.add_argument("--out", help="JSON file")
    ap.add_argument("--log", default="/tmp/bench-schedules-worker.log")
    ap.add_argument("--skip-live", action="store_true")
    args = ap.parse_args()

    import django

    django.setup()
    from django.conf import settings

    res: dict[str, Any] = {
        "n": args.n,
        "reps": args.reps,
        "database": f"SQLite, {settings.DB_PATH}",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "create_seconds": create_schedules(args.n),
    }
    res["in_process"] = in_process(args.n, args.reps)
    if not args.skip_live:
        try:
            res["live"] = live(args.n, Path(args.log))
        except Exception as exc:  # report what was measured, and why not the rest
            res["live"] = {"error": repr(exc)}
    res["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    text = json.dumps(res, indent=2, sort_keys=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.path.insert(1, str(ROOT))
    with contextlib.suppress(KeyboardInterrupt):
        main()
