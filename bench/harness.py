"""Orchestration shared by every ``<system>_bench.py``.

Copied from ``../shared/bench-anchors/harness.py`` (the method the peers were
measured with) and extended for django-jobs: an enqueue phase from sync code,
an idle phase, a result-wait phase, per-process memory, profiling and a clean
stop on SIGTERM. The anchors' phases and their arithmetic are unchanged, so
figures compare side by side with the anchors' README.

A system module provides:

* ``SYSTEM``: its name; ``CONFIGS``: ``{config_name: dict}``;
* ``worker_commands(cfg) -> list[list[str]]``: the worker process(es) to spawn
  (one Popen per entry; each may fork children of its own);
* ``make_producer(cfg)``: an object with ``single()``, ``lat(i)``, optionally
  ``batch(k)``, ``wait(i)`` and ``close()``. For asyncio libraries these are
  coroutines (``make_producer`` itself is then ``async``) and "batch" means
  ``k`` concurrent ``single()`` calls under ``asyncio.gather``. ``wait(i)``
  enqueues a job that returns its own ``time.monotonic()`` as its last act,
  waits for the result through the library's own API and returns that value
  (only where the library stores results);
* ``BATCH_KIND``: a label for what "batched enqueue" means for that library, or
  ``None`` when it has no batch API (sync libraries only);
* optionally ``make_sync_producer(cfg)``: the same for plain (sync) code, when
  the library has both an asyncio and a sync API (django-jobs: ``enqueue()``
  beside ``aenqueue()``);
* ``WAITS = True`` when the producers have ``wait(i)``; a config with
  ``"results": False`` skips the result-wait phase;
* optionally ``prepare(env)``: one-off set-up before a run (a database);
* optionally ``worker_main(cfg)`` for systems started through our own launcher;
* optionally ``BULK_KIND``: a bulk-enqueue API beside ``BATCH_KIND`` (run as
  the producer phase "bulk");
* instead of ``make_producer``, ``producer_command(cfg)`` for a producer
  written in another language (BullMQ, Sidekiq: see native.py), with
  ``NATIVE_DIR`` and ``THREADS`` (its producer has a "threads" phase).

One ``run`` goes through these phases, always with the same N:

1. batch enqueue of N jobs, no worker running (rate, producer CPU, Redis
   cost; queue discarded): asyncio producers keep ``--batch`` (100) calls in
   flight on one loop; then the bulk API, if any;
2. with a sync producer: N single enqueues from sync code, no worker running
   (rate, producer CPU, Redis cost; queue discarded); then the same N from
   ``--threads`` (16) threads sharing one producer, for every sync API;
3. single enqueue of N jobs, one call at a time, no worker running (rate,
   producer CPU, broker-Redis commands / round trips / bytes / memory per job;
   optionally under py-spy, ``--profile-producer``, with the sync phase);
4. drain: start the workers on that backlog; rate from the first job
   completion to the last (worker start-up excluded, reported separately);
5. idle: warm workers with nothing to do for ``--idle`` seconds: their CPU and
   the Redis commands they send (polling shows here);
6. end-to-end: workers idle and warm, a fresh producer process enqueues N jobs
   one at a time; time from the first enqueue call to the last job completion,
   plus commands per job, worker CPU per job and Redis CPU per job (optionally
   under a py-spy profile of the worker tree);
7. latency: ``lat_n`` single jobs with Poisson arrivals (mean gap
   ``lat_gap_ms``), enqueue-call-to-job-start, p50/p90/p99/max;
8. result wait: ``wait_n`` jobs with the same arrivals, each waited for by the
   producer; from the job's own finish stamp to the waiter's wake-up, and
   from the enqueue call to the value in hand (asyncio producers wait for each
   job in its own task; sync producers one job at a time);
9. stop the workers (SIGTERM, then SIGKILL by PID) and report the sampled peak
   RSS / PSS of the whole worker process tree and of its largest process.

Producers always run in their own subprocess (``produce`` sub-command), never
inside the orchestrator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jobside
import native
import psutil
import redis

HERE = Path(__file__).resolve().parent
# py-spy's sampling: 250 Hz keeps its own CPU small on two shared cores.
# Producers are stopped for each sample (wall time, not their CPU time; one
# call at a time, the work per enqueue stays the same): with --nonblocking up
# to 40% of an asyncio producer's stacks come out cut short. The worker is
# not: stopping it halves its rate, and so changes how its work batches.
PYSPY_ARGS = ["--rate", "250", "--format", "raw"]


# --------------------------------------------------------------------------
# Redis-side accounting
# --------------------------------------------------------------------------
def redis_snapshot(client: redis.Redis) -> dict[str, Any]:
    info = client.info("all")
    cmds = {
        key[len("cmdstat_") :]: int(val["calls"])
        for key, val in info.items()
        if key.startswith("cmdstat_")
    }
    return {
        "cmds": cmds,
        "reads": int(info.get("total_reads_processed", 0)),
        "connections": int(info.get("total_connections_received", 0)),
        "net_in": int(info["total_net_input_bytes"]),
        "net_out": int(info["total_net_output_bytes"]),
        "cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "used_memory": int(info["used_memory"]),
    }


def redis_delta(
    before: dict[str, Any], after: dict[str, Any], n: int
) -> dict[str, Any]:
    """Per-job cost between two snapshots (the INFO calls themselves removed)."""
    per_cmd = {}
    for name, calls in after["cmds"].items():
        d = calls - before["cmds"].get(name, 0)
        if name == "info":
            d -= 1  # the INFO that produced `after`
        if d > 0:
            per_cmd[name] = d
    total = sum(per_cmd.values())
    return {
        "cmds_per_job": total / n,
        "round_trips_per_job": (after["reads"] - before["reads"] - 1) / n,
        "connections_per_job": (after["connections"] - before["connections"]) / n,
        "net_in_bytes_per_job": (after["net_in"] - before["net_in"]) / n,
        "net_out_bytes_per_job": (after["net_out"] - before["net_out"]) / n,
        "redis_cpu_us_per_job": (after["cpu"] - before["cpu"]) * 1e6 / n,
        "used_memory_delta_per_job": (after["used_memory"] - before["used_memory"]) / n,
        "cmd_breakdown_per_job": {
            k: v / n for k, v in sorted(per_cmd.items(), key=lambda kv: -kv[1])
        },
    }


# --------------------------------------------------------------------------
# Worker process tree: spawning, sampling, stopping
# --------------------------------------------------------------------------
def _tree(roots: list[psutil.Process]) -> list[psutil.Process]:
    procs: dict[int, psutil.Process] = {}
    for root in roots:
        try:
            if root.is_running():
                procs[root.pid] = root
                for child in root.children(recursive=True):
                    procs[child.pid] = child
        except psutil.NoSuchProcess:
            pass
    return list(procs.values())


def tree_cpu_seconds(roots: list[psutil.Process]) -> float:
    """User+system CPU of every live process in the tree, plus what each has
    reaped from its dead children (rq's per-job work horses end up there)."""
    total = 0.0
    for proc in _tree(roots):
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


class TreeSampler(threading.Thread):
    """Samples RSS and PSS of the whole worker tree every `interval` seconds,
    and the PSS of its largest process."""

    def __init__(self, roots: list[psutil.Process], interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.interval = interval
        self._stop_evt = threading.Event()
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_proc_pss = 0
        self.peak_procs = 0
        self.samples = 0

    def sample(self) -> None:
        rss = pss = 0
        procs = _tree(self.roots)
        for proc in procs:
            try:
                full = proc.memory_full_info()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            rss += full.rss
            one = getattr(full, "pss", full.rss)
            pss += one
            self.peak_proc_pss = max(self.peak_proc_pss, one)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, len(procs))
        self.samples += 1

    def run(self) -> None:
        while not self._stop_evt.is_set():
            self.sample()
            self._stop_evt.wait(self.interval)

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(timeout=5)

    def report(self) -> dict[str, Any]:
        mb = 2**20
        return {
            "peak_tree_rss_mb": self.peak_rss / mb,
            "peak_tree_pss_mb": self.peak_pss / mb,
            "peak_proc_pss_mb": self.peak_proc_pss / mb,
            "peak_procs": self.peak_procs,
            "samples": self.samples,
        }


def vm_hwm_bytes(roots: list[psutil.Process]) -> dict[int, int]:
    out = {}
    for proc in _tree(roots):
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[proc.pid] = int(line.split()[1]) * 1024
        except OSError:
            pass
    return out


def spawn_workers(
    cmds: list[list[str]], env: dict[str, str], log_path: Path
) -> tuple[list[subprocess.Popen], Any]:
    log = open(log_path, "ab")
    procs = []
    for cmd in cmds:
        log.write(f"\n=== spawn: {' '.join(cmd)}\n".encode())
        log.flush()
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=HERE,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return procs, log


def stop_workers(procs: list[subprocess.Popen], grace: float = 15.0) -> dict[str, Any]:
    """SIGTERM the spawned roots, wait, then SIGKILL whatever is left of the
    tree, by PID. Only processes this harness started are touched."""
    roots = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            roots.append(psutil.Process(p.pid))
    tree = _tree(roots)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    _, alive = psutil.wait_procs(tree, timeout=max(0.1, deadline - time.monotonic()))
    killed = []
    for proc in alive:
        try:
            proc.kill()
            killed.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)
    return {"sigkilled": killed, "graceful": not killed}


def _pyspy() -> str | None:
    return os.environ.get("BENCH_PYSPY") or shutil.which("py-spy")


def pyspy_command(out: Path | None, cmd: list[str]) -> list[str]:
    """`cmd` run under py-spy, its samples written to `out` (collapsed stacks,
    as profiled() writes them); `cmd` itself without `out` or py-spy."""
    pyspy = _pyspy()
    if out is None or not pyspy:
        return cmd
    out.parent.mkdir(parents=True, exist_ok=True)
    return [pyspy, "record", *PYSPY_ARGS, "--output", str(out), "--", *cmd]


@contextlib.contextmanager
def profiled(roots: list[psutil.Process], out: Path | None) -> Iterator[None]:
    """py-spy (BENCH_PYSPY or on PATH) samples the worker tree while inside.

    Writes `out` (collapsed stacks: "frame;frame;... count" per line) when the
    block ends; does nothing when `out` is None or py-spy is missing.
    """
    pyspy = _pyspy()
    if out is None or not pyspy or not roots:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [pyspy, "record", "--pid", str(roots[0].pid), "--subprocesses"]
    cmd += [*PYSPY_ARGS, "--nonblocking", "--output", str(out)]
    with open(out.with_suffix(".log"), "wb") as log:
        spy = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # attached before the load starts
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()


# --------------------------------------------------------------------------
# Producer side (runs in its own subprocess)
# --------------------------------------------------------------------------
def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    s = sorted(values)

    def pct(p: float) -> float:
        # nearest-rank percentile
        k = max(0, min(len(s) - 1, round(p / 100.0 * len(s) + 0.5) - 1))
        return s[k]

    return {
        "count": len(s),
        "p50_ms": pct(50) * 1e3,
        "p90_ms": pct(90) * 1e3,
        "p99_ms": pct(99) * 1e3,
        "max_ms": s[-1] * 1e3,
        "mean_ms": statistics.fmean(s) * 1e3,
        "min_ms": s[0] * 1e3,
    }


def _collect_latency(enq: dict[int, float], timeout: float) -> dict[str, Any]:
    h = redis.Redis.from_url(jobside.HARNESS_URL)
    deadline = time.monotonic() + timeout
    while h.hlen(jobside.K_LAT) < len(enq) and time.monotonic() < deadline:
        time.sleep(0.02)
    starts = {int(k): float(v) for k, v in h.hgetall(jobside.K_LAT).items()}
    lat = [starts[i] - t0 for i, t0 in enq.items() if i in starts]
    out = _percentiles(lat)
    out["missing"] = len(enq) - len(lat)
    return out


def _waits(samples: list[tuple[float, float, float]], asked: int) -> dict[str, Any]:
    """(enqueue call, job's finish stamp, waiter awake) -> the two latencies."""
    return {
        "after_finish": _percentiles([w - f for _, f, w in samples]),
        "round_trip": _percentiles([w - e for e, _, w in samples]),
        "missing": asked - len(samples),
    }


def _gaps(args: argparse.Namespace, n: int) -> list[float]:
    """Seconds between `n` Poisson arrivals (the same for every system)."""
    rng = random.Random(args.seed)
    return [rng.expovariate(1000.0 / args.lat_gap_ms) for _ in range(n)]


def _arrivals(args: argparse.Namespace, n: int) -> Iterator[float]:
    """Poisson arrival times (monotonic) for `n` jobs, from now."""
    t_next = time.monotonic()
    for gap in _gaps(args, n):
        t_next += gap
        yield t_next


def _timed(fn: Any) -> dict[str, float]:
    cpu0 = time.process_time()
    t0 = time.monotonic()
    fn()
    t1 = time.monotonic()
    return {"t_first": t0, "t_last": t1, "cpu_s": time.process_time() - cpu0}


def _threaded(prod: Any, n: int, threads: int) -> dict[str, Any]:
    """`n` single() calls shared by `threads` threads on one producer object,
    as a threaded web server's views share a module-level task."""
    shares = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
    gate = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        gate.wait()
        try:
            for _ in range(k):
                prod.single()
        except Exception as exc:  # re-raised below, in the producer's thread
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(k,)) for k in shares]
    for t in pool:
        t.start()

    def release_and_join() -> None:
        gate.wait()
        for t in pool:
            t.join()

    out: dict[str, Any] = {**_timed(release_and_join), "threads": threads}
    if errors:
        raise errors[0]
    return out


def _sync_produce(
    make: Any, cfg: dict, phase: str, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    prod = make(cfg)
    try:
        if phase == "single":
            return _timed(lambda: [prod.single() for _ in range(n)])
        if phase == "batch":
            sizes = [min(args.batch, n - i) for i in range(0, n, args.batch)]
            return _timed(lambda: [prod.batch(k) for k in sizes])
        if phase == "threads":
            return _threaded(prod, n, args.threads)
        if phase == "lat":
            enq: dict[int, float] = {}
            for i, at in enumerate(_arrivals(args, n)):
                time.sleep(max(0.0, at - time.monotonic()))
                enq[i] = time.monotonic()
                prod.lat(i)
            return _collect_latency(enq, args.lat_timeout)
        if phase == "wait":
            samples = []
            for i, at in enumerate(_arrivals(args, n)):
                time.sleep(max(0.0, at - time.monotonic()))
                t_enq = time.monotonic()
                try:
                    finished = float(prod.wait(i))
                except Exception as exc:  # counted as missing
                    print(f"wait {i}: {exc!r}", file=sys.stderr)
                    continue
                samples.append((t_enq, finished, time.monotonic()))
            return _waits(samples, n)
        raise ValueError(phase)
    finally:
        close = getattr(prod, "close", None)
        if close:
            close()


async def _async_wait_one(prod: Any, i: int, at: float) -> tuple[float, ...] | None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    t_enq = time.monotonic()
    try:
        finished = float(await prod.wait(i))
    except Exception as exc:  # counted as missing
        print(f"wait {i}: {exc!r}", file=sys.stderr)
        return None
    return (t_enq, finished, time.monotonic())


async def _async_produce(
    mod: ModuleType, cfg: dict, phase: str, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    prod = await mod.make_producer(cfg)
    res: dict[str, Any] = {}
    try:
        if phase == "single":
            cpu0 = time.process_time()
            t0 = time.monotonic()
            for _ in range(n):
                await prod.single()
            t1 = time.monotonic()
            res.update(t_first=t0, t_last=t1, cpu_s=time.process_time() - cpu0)
        elif phase == "batch":
            cpu0 = time.process_time()
            t0 = time.monotonic()
            left = n
            while left > 0:
                k = min(args.batch, left)
                await asyncio.gather(*(prod.single() for _ in range(k)))
                left -= k
            t1 = time.monotonic()
            res.update(t_first=t0, t_last=t1, cpu_s=time.process_time() - cpu0)
        elif phase == "lat":
            enq: dict[int, float] = {}
            for i, at in enumerate(_arrivals(args, n)):
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                enq[i] = time.monotonic()
                await prod.lat(i)
            res.update(await asyncio.to_thread(_collect_latency, enq, args.lat_timeout))
        elif phase == "wait":
            # One task per job, so a slow result does not delay the next arrival.
            got = await asyncio.gather(
                *(
                    _async_wait_one(prod, i, at)
                    for i, at in enumerate(_arrivals(args, n))
                )
            )
            res.update(_waits([g for g in got if g is not None], n))
    finally:
        close = getattr(prod, "close", None)
        if close:
            await close()
    return res


def produce(mod: ModuleType, args: argparse.Namespace) -> None:
    cfg = _cfg(mod, args.config)
    if args.api == "sync":
        res = _sync_produce(mod.make_sync_producer, cfg, args.phase, args.n, args)
        res["api"] = "sync"
    elif inspect.iscoroutinefunction(mod.make_producer):
        # Asyncio producers run on uvloop, as they would under uvicorn.
        import uvloop

        res = uvloop.run(_async_produce(mod, cfg, args.phase, args.n, args))
        res["loop"] = "uvloop"
    else:
        res = _sync_produce(mod.make_producer, cfg, args.phase, args.n, args)
    print("RESULT " + json.dumps(res), flush=True)


# --------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------
def _env(mod: ModuleType, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env["BENCH_CONFIG"] = args.config
    env["BENCH_N"] = str(args.n)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(HERE) + (os.pathsep + path if path else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _run_producer(
    mod: ModuleType,
    args: argparse.Namespace,
    phase: str,
    n: int,
    env: dict[str, str],
    log: Path,
    api: str = "native",
    profile: Path | None = None,
) -> dict[str, Any]:
    """One producer phase in its own process; `profile`: under py-spy, there."""
    if hasattr(mod, "producer_command"):  # Node, Ruby: see native.py
        opts = {"n": n, "batch": args.batch, "threads": args.threads}
        opts.update(timeout=args.phase_timeout, gaps=_gaps(args, n))
        out = native.run_producer(mod, _cfg(mod, args.config), phase, opts, env, log)
        return _collect_latency(out["enq"], args.lat_timeout) if phase == "lat" else out
    script = HERE / f"{mod.__name__}.py"
    cmd = [sys.executable, str(script), "produce", "--config", args.config]
    cmd += ["--phase", phase, "--n", str(n), "--batch", str(args.batch), "--api", api]
    cmd += ["--lat-gap-ms", str(args.lat_gap_ms), "--seed", str(args.seed)]
    cmd += ["--lat-timeout", str(args.lat_timeout), "--threads", str(args.threads)]
    cmd = pyspy_command(profile, cmd)
    with open(log, "ab") as lf:
        lf.write(f"\n=== producer {phase} ({api}) n={n}\n".encode())
        lf.flush()
        proc = subprocess.run(
            cmd,
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=lf,
            timeout=args.phase_timeout,
        )
    out = proc.stdout.decode(errors="replace")
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(
        f"producer {phase} failed (rc={proc.returncode}); see {log}\n{out[-2000:]}"
    )


def _brpop_time(h: redis.Redis, key: str, timeout: float) -> float | None:
    # Short BRPOPs in a loop: redis-py 8 clients default to a 5 s socket timeout.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = h.brpop([key], timeout=max(1, min(2, int(deadline - time.monotonic()))))
        if got:
            return float(got[1])
    return None


def _threads_api(mod: ModuleType) -> str | None:
    """The API whose enqueue runs from threads: django-jobs' sync one, a sync
    library's only one, a native producer's when it says so (THREADS)."""
    if hasattr(mod, "producer_command"):
        return "native" if getattr(mod, "THREADS", False) else None
    if hasattr(mod, "make_sync_producer"):
        return "sync"
    return None if inspect.iscoroutinefunction(mod.make_producer) else "native"


def _sibling(path: Path | None, tag: str) -> Path | None:
    return None if path is None else path.with_name(path.stem + tag + path.suffix)


def _cfg(mod: ModuleType, name: str) -> dict[str, Any]:
    return {**mod.CONFIGS[name], "_name": name}


def _rate(out: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "jobs_per_s": n / (out["t_last"] - out["t_first"]),
        "producer_cpu_us_per_job": out["cpu_s"] * 1e6 / n,
    }


class Run:
    """One `run`: the phases above, for one configuration."""

    def __init__(self, mod: ModuleType, args: argparse.Namespace) -> None:
        self.mod, self.args = mod, args
        self.cfg = _cfg(mod, args.config)
        self.n = args.n
        self.lib = redis.Redis.from_url(jobside.LIB_URL)
        self.h = redis.Redis.from_url(jobside.HARNESS_URL)
        self.env = _env(mod, args)
        default_log = f"{tempfile.gettempdir()}/bench-{args.config}.log"
        self.log = Path(args.log or default_log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.res: dict[str, Any] = {
            "system": mod.SYSTEM,
            "config": args.config,
            "cfg": self.cfg,
            "n": self.n,
            "lat_n": args.lat_n,
            "wait_n": args.wait_n,
            "lat_gap_ms": args.lat_gap_ms,
            "batch_size": args.batch,
            "batch_kind": mod.BATCH_KIND,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "errors": [],
        }

    def produce(
        self, phase: str, n: int, api: str = "native", profile: Path | None = None
    ) -> dict[str, Any]:
        args, env, log = self.args, self.env, self.log
        return _run_producer(self.mod, args, phase, n, env, log, api, profile)

    def costed(
        self, phase: str, api: str = "native", profile: Path | None = None
    ) -> dict[str, Any]:
        """An enqueue phase of N jobs, workers down: rate, producer CPU and the
        broker Redis's cost per job."""
        s0 = redis_snapshot(self.lib)
        out = self.produce(phase, self.n, api, profile)
        s1 = redis_snapshot(self.lib)
        extra = {"threads": out["threads"]} if "threads" in out else {}
        return {**_rate(out, self.n), **extra, "redis": redis_delta(s0, s1, self.n)}

    def main(self) -> dict[str, Any]:
        self.lib.flushall()
        self.h.flushall()
        try:
            prepare = getattr(self.mod, "prepare", None)
            if prepare:
                prepare(self.env)
            self.enqueue_phases()
        except Exception as exc:
            self.res["errors"].append(repr(exc))
            return self.res
        self.worker_phases()
        self.res["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        return self.res

    def enqueue_phases(self) -> None:
        res, mod = self.res, self.mod
        asked = self.args.profile_producer
        profile = Path(asked) if asked else None
        # 1. batch enqueue (workers down): for asyncio producers, 100 calls in
        # flight at once on one loop; for the others, their batch API
        if mod.BATCH_KIND:
            res["enqueue_batch"] = self.costed("batch")
            self.lib.flushall()
        # 1b. a bulk API beside it (BullMQ addBulk, Sidekiq push_bulk)
        if getattr(mod, "BULK_KIND", None):
            res["enqueue_bulk"] = {**self.costed("bulk"), "kind": mod.BULK_KIND}
            self.lib.flushall()
        # 2. single enqueue from sync code, when the library also has that API
        if hasattr(mod, "make_sync_producer"):
            sync_profile = _sibling(profile, "-sync")
            res["enqueue_sync"] = self.costed("single", "sync", sync_profile)
            self.lib.flushall()
        # 2b. sync enqueue from --threads threads sharing one producer
        threads_api = _threads_api(mod)
        if threads_api and self.args.threads > 0:
            res["enqueue_threads"] = self.costed("threads", threads_api)
            self.lib.flushall()
        # 3. single enqueue (workers down): rate + Redis cost of enqueue alone
        res["enqueue_single"] = self.costed("single", profile=profile)
        if profile:
            res["enqueue_single"]["profile"] = str(profile)

    def worker_phases(self) -> None:
        # 4. drain the backlog with freshly started workers
        t_spawn = time.monotonic()
        cmds = self.mod.worker_commands(self.cfg)
        procs, wlog = spawn_workers(cmds, self.env, self.log)
        roots = [psutil.Process(p.pid) for p in procs]
        sampler = TreeSampler(roots)
        sampler.start()
        try:
            self.drain(t_spawn, roots)
            self.idle(roots)
            self.e2e(roots)
            self.latency()
            self.result_wait()
        except Exception as exc:  # keep going: record, clean up, report
            self.res["errors"].append(repr(exc))
        finally:
            sampler.sample()
            hwm = vm_hwm_bytes(roots)
            sampler.stop()
            self.res["memory"] = {
                **sampler.report(),
                "vm_hwm_sum_mb_live_procs": sum(hwm.values()) / 2**20,
            }
            self.res["stop"] = stop_workers(procs)
            wlog.close()

    def drain(self, t_spawn: float, roots: list[psutil.Process]) -> None:
        n, h, timeout = self.n, self.h, self.args.phase_timeout
        t_first = _brpop_time(h, jobside.K_FIRST, timeout)
        t_done = _brpop_time(h, jobside.K_DONE, timeout) if t_first else None
        if t_first is None or t_done is None:
            raise RuntimeError(f"drain did not finish: count={h.get(jobside.K_COUNT)}")
        self.res["drain"] = {
            "jobs_per_s": (n - 1) / (t_done - t_first),
            "startup_s": t_first - t_spawn,
        }
        self.res["worker_procs"] = len(_tree(roots))
        time.sleep(0.2)
        self.res["count_after_drain"] = int(h.get(jobside.K_COUNT) or 0)

    def idle(self, roots: list[psutil.Process]) -> None:
        """5. Warm workers with nothing to do: CPU and Redis traffic."""
        time.sleep(self.args.settle)
        if self.args.idle <= 0:
            return
        s0, cpu0, t0 = redis_snapshot(self.lib), tree_cpu_seconds(roots), time.time()
        time.sleep(self.args.idle)
        cpu1, s1, t1 = tree_cpu_seconds(roots), redis_snapshot(self.lib), time.time()
        per_s = redis_delta(s0, s1, 1)
        secs = t1 - t0
        self.res["idle"] = {
            "seconds": secs,
            "worker_cpu_pct": (cpu1 - cpu0) * 100 / secs,
            "redis_cmds_per_s": per_s["cmds_per_job"] / secs,
            "redis_round_trips_per_s": per_s["round_trips_per_job"] / secs,
        }

    def e2e(self, roots: list[psutil.Process]) -> None:
        """6. End-to-end with warm, idle workers."""
        n, h = self.n, self.h
        h.delete(jobside.K_FIRST)
        profile = Path(self.args.profile) if self.args.profile else None
        s0 = redis_snapshot(self.lib)
        cpu0 = tree_cpu_seconds(roots)
        with profiled(roots, profile):
            out = self.produce("single", n)
            t_done = _brpop_time(h, jobside.K_DONE, self.args.phase_timeout)
            cpu1 = tree_cpu_seconds(roots)
            s1 = redis_snapshot(self.lib)
        if t_done is None:
            raise RuntimeError(f"e2e did not finish: count={h.get(jobside.K_COUNT)}")
        time.sleep(0.2)
        self.res["count_after_e2e"] = int(h.get(jobside.K_COUNT) or 0)
        self.res["e2e"] = {
            "jobs_per_s": n / (t_done - out["t_first"]),
            "enqueue_jobs_per_s_under_load": n / (out["t_last"] - out["t_first"]),
            "worker_cpu_us_per_job": (cpu1 - cpu0) * 1e6 / n,
            "redis": redis_delta(s0, s1, n),
        }
        if profile:
            self.res["e2e"]["profile"] = str(profile)

    def latency(self) -> None:
        """7. Latency, light open-loop load; then the exactly-once count."""
        h = self.h
        h.delete(jobside.K_FIRST)
        time.sleep(self.args.settle)
        self.res["latency"] = self.produce("lat", self.args.lat_n)
        time.sleep(0.5)
        count = int(h.get(jobside.K_COUNT) or 0)
        expected = 2 * self.n
        self.res["exactly_once_check"] = {
            "expected": expected,
            "counted": count,
            "lost": max(0, expected - count),
            "duplicated": max(0, count - expected),
            "ok": count == expected,
        }

    def result_wait(self) -> None:
        """8. Result wait, through each API that has it (WAITS: the producers
        have wait(); a config with "results": False stores none)."""
        waits = getattr(self.mod, "WAITS", False) and self.cfg.get("results", True)
        if not waits or self.args.wait_n <= 0:
            return
        apis = [("result_wait", "native")]
        if hasattr(self.mod, "make_sync_producer"):
            apis.append(("result_wait_sync", "sync"))
        for key, api in apis:
            time.sleep(self.args.settle)
            self.res[key] = self.produce("wait", self.args.wait_n, api=api)


def run(mod: ModuleType, args: argparse.Namespace) -> dict[str, Any]:
    return Run(mod, args).main()


def trace(mod: ModuleType, args: argparse.Namespace) -> dict[str, Any]:
    """MONITOR the broker Redis while `n` jobs are enqueued (workers down) and
    then drained; writes the raw log and a per-command count."""
    cfg = _cfg(mod, args.config)
    lib = redis.Redis.from_url(jobside.LIB_URL)
    h = redis.Redis.from_url(jobside.HARNESS_URL)
    lib.flushall()
    h.flushall()
    env = _env(mod, args)
    prepare = getattr(mod, "prepare", None)
    if prepare:
        prepare(env)
    default_log = f"{tempfile.gettempdir()}/bench-{args.config}.trace-run.log"
    log = Path(args.log or default_log)
    out_path = Path(args.trace_out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as mon_file:
        mon = subprocess.Popen(
            ["redis-cli", "-h", jobside.HOST, "-p", str(jobside.LIB_PORT), "monitor"],
            stdout=mon_file,
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.3)
        try:
            lib.echo("=== BENCH enqueue start")
            _run_producer(mod, args, "single", args.n, env, log)
            lib.echo("=== BENCH enqueue end; workers start")
            procs, wlog = spawn_workers(mod.worker_commands(cfg), env, log)
            try:
                _brpop_time(h, jobside.K_DONE, args.phase_timeout)
                time.sleep(0.3)
                lib.echo("=== BENCH drained")
            finally:
                stop_workers(procs)
                wlog.close()
        finally:
            time.sleep(0.3)
            mon.terminate()
            mon.wait(timeout=5)
    return {
        "system": mod.SYSTEM,
        "config": args.config,
        "n": args.n,
        "counts": _monitor_counts(out_path),
        "note": "drain section includes worker start-up and idle polling",
        "monitor_log": str(out_path),
    }


def _monitor_counts(path: Path) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {
        "enqueue": {},
        "drain": {},
        "startup_idle_shutdown": {},
    }
    marks = {
        "=== BENCH enqueue start": "enqueue",
        "=== BENCH enqueue end": "drain",
        "=== BENCH drained": "startup_idle_shutdown",
    }
    section = None
    for line in path.read_text(errors="replace").splitlines():
        mark = next((s for m, s in marks.items() if m in line), None)
        if mark:
            section = mark
            continue
        if section is None or '"' not in line:
            continue
        cmd = line.split('"', 2)[1].lower()
        counts[section][cmd] = counts[section].get(cmd, 0) + 1
    return counts


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def _on_sigterm(signum: int, frame: Any) -> None:
    # A driver stopped by SIGTERM: unwind, so `finally` stops the workers.
    raise KeyboardInterrupt(f"signal {signum}")


def _parser(mod: ModuleType, module_name: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"{module_name}.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    n_default = int(os.environ.get("BENCH_N_DEFAULT", "10000"))
    for name in ("run", "produce", "worker", "trace"):
        p = sub.add_parser(name)
        p.add_argument("--config", required=True, choices=sorted(mod.CONFIGS))
        p.add_argument("--n", type=int, default=n_default)
        p.add_argument("--lat-n", type=int, default=500)
        p.add_argument("--wait-n", type=int, default=200, help="result-wait samples")
        p.add_argument(
            "--lat-gap-ms", type=float, default=20.0, help="mean Poisson gap"
        )
        p.add_argument("--lat-timeout", type=float, default=60.0)
        p.add_argument("--batch", type=int, default=100)
        p.add_argument("--seed", type=int, default=12345)
        p.add_argument(
            "--settle", type=float, default=1.0, help="idle s before later phases"
        )
        p.add_argument(
            "--idle", type=float, default=3.0, help="s of idle-cost measurement"
        )
        p.add_argument("--phase-timeout", type=float, default=600.0)
        p.add_argument(
            "--phase", choices=["single", "batch", "bulk", "threads", "lat", "wait"]
        )
        p.add_argument("--api", choices=["native", "sync"], default="native")
        p.add_argument("--profile", help="py-spy output for the e2e phase")
        p.add_argument(
            "--profile-producer",
            help="py-spy output for the single-enqueue phase (and <name>-sync)",
        )
        p.add_argument(
            "--threads", type=int, default=16, help="threads of the threads phase"
        )
        p.add_argument("--out")
        p.add_argument("--log")
        p.add_argument("--trace-out")
    return ap


def main(module_name: str) -> None:
    mod = importlib.import_module(module_name)
    args = _parser(mod, module_name).parse_args()
    if args.cmd == "list":
        print("\n".join(mod.CONFIGS))
        return
    if args.cmd == "produce":
        produce(mod, args)
        return
    if args.cmd == "worker":
        mod.worker_main(_cfg(mod, args.config))
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    res = trace(mod, args) if args.cmd == "trace" else run(mod, args)
    text = json.dumps(res, indent=2, sort_keys=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)
