"""Aggregate one results folder (written by bench/run) into markdown tables.

Usage: python report.py RESULTS_DIR > RESULTS_DIR/report.md

Every figure is the median over the repetitions, with [min-max] beside it.
The first tables answer issue 5 (django-jobs against its peers, as ratios; the
targets; process scaling; the scheduler's cost; the profile); the anchors'
detailed tables follow, with the django-jobs configurations added.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import profile_phases
import profile_summary
import report_peers
from tables import (
    JOBS,
    Agg,
    Doc,
    Metric,
    Runs,
    agg,
    col,
    fmt,
    get,
    med,
    per_config,
    ratio,
    ratio_table,
)

ORDER = [
    "jobs-c100",
    "jobs-c100-sync",
    "jobs-c100-p2",
    "jobs-default",
    "celery-prefork-c2",
    "celery-prefork-c2-results",
    "celery-threads-c10",
    "celery-gevent-c100",
    "arq-default",
    "arq-mj100",
    "arq-mj100-x2",
    "arq-mj100-poll50ms",
    "arq-mj100-poll50ms-x2",
    "rq-2workers",
    "dramatiq-p2-t8",
    "taskiq-stream",
    "taskiq-list",
    "saq-default",
    "bullmq-c100",
    "bullmq-c100-roc",
    "bullmq-default",
    "sidekiq-c10",
    "sidekiq-c100",
]
# The peers of the headline table, as issue 5 names them.
PEERS = [
    ("celery-prefork-c2-results", "Celery prefork -c2, Redis results"),
    ("celery-prefork-c2", "Celery prefork -c2, no results"),
    ("arq-mj100", "arq max_jobs 100 (same settings)"),
    ("taskiq-stream", "taskiq stream, no results"),
    ("dramatiq-p2-t8", "Dramatiq 2 procs x 8 threads, no results"),
]


def load_runs(root: Path) -> tuple[Runs, dict[str, str]]:
    """The runs by config, and the configs skipped (peer not installed)."""
    by_cfg: Runs = defaultdict(list)
    skipped: dict[str, str] = {}
    for p in sorted((root / "runs").glob("*.json")):
        d = json.loads(p.read_text())
        if "skipped" in d:
            skipped[d["config"]] = d["skipped"]
        else:
            by_cfg[d["config"]].append(d)
    return by_cfg, skipped


def ceiling(root: Path) -> dict[str, dict[str, float]]:
    """Median requests/s per command from the redis-benchmark logs."""
    out: dict[str, dict[str, list[float]]] = {
        "plain": defaultdict(list),
        "P16": defaultdict(list),
    }
    line = re.compile(r"^([A-Z]+)(?: \([^)]*\))?: ([0-9.]+) requests per second", re.M)
    for p in sorted((root / "ceiling").glob("redis-benchmark-*.txt")):
        mode = "P16" if "-P16" in p.name else "plain"
        text = p.read_text(errors="replace").replace("\r", "\n")
        final = {m.group(1): float(m.group(2)) for m in line.finditer(text)}
        for k, v in final.items():
            out[mode][k].append(v)
    return {
        mode: {k: statistics.median(v) for k, v in d.items()} for mode, d in out.items()
    }


def read_text(path: Path) -> str:
    return path.read_text(errors="replace").strip() if path.exists() else ""


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
HEADLINE = [
    Metric("enqueue, async view path (jobs/s)", "enqueue_single.jobs_per_s", "higher"),
    Metric(
        "enqueue, sync code (jobs/s)",
        "enqueue_sync.jobs_per_s",
        "higher",
        peer_path="enqueue_single.jobs_per_s",
        peer_sync_only=True,
    ),
    Metric("end-to-end, async tasks (jobs/s)", "e2e.jobs_per_s", "higher"),
    Metric(
        "end-to-end, sync tasks (jobs/s)",
        "e2e.jobs_per_s",
        "higher",
        jobs_cfg="jobs-c100-sync",
    ),
    Metric("drain, async tasks (jobs/s)", "drain.jobs_per_s", "higher"),
    Metric(
        "drain, sync tasks (jobs/s)", "drain.jobs_per_s", "higher", 0, "jobs-c100-sync"
    ),
    Metric("enqueue→start p50 (ms)", "latency.p50_ms", "lower", 1),
    Metric("enqueue→start p99 (ms)", "latency.p99_ms", "lower", 1),
    Metric(
        "result wait after finish p50 (ms)",
        "result_wait.after_finish.p50_ms",
        "lower",
        2,
    ),
    Metric(
        "result wait after finish p99 (ms)",
        "result_wait.after_finish.p99_ms",
        "lower",
        2,
    ),
    Metric(
        "result wait after finish p50, sync `get()` (ms)",
        "result_wait_sync.after_finish.p50_ms",
        "lower",
        2,
        peer_path="result_wait.after_finish.p50_ms",
        peer_sync_only=True,
    ),
    Metric("worker PSS, largest process (MB)", "memory.peak_proc_pss_mb", "lower", 1),
    Metric("worker PSS, whole tree (MB)", "memory.peak_tree_pss_mb", "lower", 1),
    Metric("start-up to first job done (s)", "drain.startup_s", "lower", 2),
    Metric("Redis commands / job (e2e)", "e2e.redis.cmds_per_job", "lower", 2),
    Metric(
        "Redis round trips / job (e2e)", "e2e.redis.round_trips_per_job", "lower", 2
    ),
    Metric("worker CPU / job (µs, e2e)", "e2e.worker_cpu_us_per_job", "lower"),
    Metric(
        "producer CPU / enqueue (µs)", "enqueue_single.producer_cpu_us_per_job", "lower"
    ),
    Metric("idle worker CPU (%)", "idle.worker_cpu_pct", "lower", 2),
    Metric("idle Redis commands / s", "idle.redis_cmds_per_s", "lower", 1),
]


def headline(doc: Doc, runs: Runs, skipped: dict[str, str]) -> None:
    head, rows = ratio_table(runs, skipped, HEADLINE, PEERS)
    doc.w(f"### django-jobs against its peers ({JOBS})\n")
    doc.table(
        head,
        rows,
        "Median [min-max] over the repetitions. ratio = django-jobs ÷ peer: above 1 "
        "is better where higher is better, below 1 is better where lower is better. "
        "Peers without a result backend have no result-wait figure; peers without "
        "a sync enqueue API (arq, taskiq) have no sync-code figure; Celery's and "
        "Dramatiq's only enqueue API is sync, so their async-path figure is that "
        "same blocking call.",
    )


# --------------------------------------------------------------------------
# Targets (issue 5, item 2)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    threshold: str
    met: bool | None


def yes_no(met: bool | None) -> str:
    return "n/a" if met is None else ("**yes**" if met else "**no**")


def div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def throughput_targets(runs: Runs) -> list[Target]:
    out = []
    celery = med(runs, "celery-prefork-c2-results", "e2e.jobs_per_s")
    for cfg in (JOBS, "jobs-c100-p2"):
        r = div(med(runs, cfg, "e2e.jobs_per_s"), celery)
        out.append(
            Target(
                f"end-to-end with results ≥ 2.5x Celery-with-results ({cfg})",
                "n/a" if r is None else f"{r:.2f}x",
                "≥ 2.5x",
                None if r is None else r >= 2.5,
            )
        )
    for peer in ("taskiq-stream", "dramatiq-p2-t8"):
        r = div(med(runs, JOBS, "e2e.jobs_per_s"), med(runs, peer, "e2e.jobs_per_s"))
        out.append(
            Target(
                f"end-to-end ahead of {peer} ({JOBS})",
                "n/a" if r is None else f"{r:.2f}x",
                "> 1x",
                None if r is None else r > 1,
            )
        )
    for path, what in (("e2e.jobs_per_s", "end-to-end"), ("drain.jobs_per_s", "drain")):
        r = div(med(runs, JOBS, path), med(runs, "arq-mj100", path))
        out.append(
            Target(
                f"layer overhead < 10% against raw arq, same settings ({what})",
                overhead(r),
                "< 10%",
                None if r is None else (1 - r) < 0.10,
            )
        )
    return out


def overhead(r: float | None) -> str:
    """1 - jobs ÷ arq: what the layer costs; negative: faster than raw arq."""
    if r is None:
        return "n/a"
    return f"{(1 - r) * 100:+.0f}% (django-jobs ÷ arq = {r:.2f}x)"


def latency_targets(runs: Runs) -> list[Target]:
    p50 = med(runs, JOBS, "latency.p50_ms")
    p99 = med(runs, JOBS, "latency.p99_ms")
    idle = med(runs, JOBS, "idle.worker_cpu_pct")
    arq_idle = med(runs, "arq-default", "idle.worker_cpu_pct")
    wait50 = med(runs, JOBS, "result_wait.after_finish.p50_ms")
    return [
        Target("enqueue→start p50", _ms(p50), "< 2 ms", _lt(p50, 2)),
        Target("enqueue→start p99", _ms(p99), "< 10 ms", _lt(p99, 10)),
        Target(
            "idle worker CPU not above arq's polling worker (arq-default)",
            "n/a"
            if idle is None or arq_idle is None
            else f"{idle:.2f}% vs {arq_idle:.2f}%",
            "≤ arq-default",
            # CPU time comes in 10 ms ticks: equal to 2 decimals is equal.
            None
            if idle is None or arq_idle is None
            else round(idle, 2) <= round(arq_idle, 2),
        ),
        Target(
            "result wait after the job finished, p50",
            _ms(wait50),
            "< 2 ms",
            _lt(wait50, 2),
        ),
    ]


def resource_targets(runs: Runs) -> list[Target]:
    out = []
    for cfg in (JOBS, "jobs-c100-p2"):
        pss = med(runs, cfg, "memory.peak_proc_pss_mb")
        out.append(
            Target(
                f"worker PSS per process ({cfg})",
                "n/a" if pss is None else f"{pss:.1f} MB",
                "< 40 MB",
                _lt(pss, 40),
            )
        )
    start = med(runs, JOBS, "drain.startup_s")
    rt = med(runs, JOBS, "e2e.redis.round_trips_per_job")
    arq_rt = med(runs, "arq-mj100", "e2e.redis.round_trips_per_job")
    out += [
        Target(
            "start-up to first job",
            "n/a" if start is None else f"{start:.2f} s",
            "< 0.5 s",
            _lt(start, 0.5),
        ),
        Target(
            "Redis round trips per job (e2e), fewer than arq's",
            "n/a" if rt is None else f"{rt:.2f} (arq-mj100: {_num(arq_rt)})",
            "< 9 and < arq",
            None if rt is None else rt < 9 and (arq_rt is None or rt < arq_rt),
        ),
    ]
    r = div(
        med(runs, "jobs-c100-p2", "drain.jobs_per_s"),
        med(runs, JOBS, "drain.jobs_per_s"),
    )
    out.append(
        Target(
            "2 processes on 2 cores scale the drain (jobs-c100-p2 ÷ jobs-c100)",
            "n/a" if r is None else f"{r:.2f}x",
            "> 1x (more than one core used)",
            None if r is None else r > 1.0,
        )
    )
    return out


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f} ms"


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _lt(v: float | None, limit: float) -> bool | None:
    return None if v is None else v < limit


def targets(doc: Doc, runs: Runs) -> None:
    rows = throughput_targets(runs) + latency_targets(runs) + resource_targets(runs)
    doc.w("### Targets (issue 5)\n")
    doc.table(
        ["target", "measured (median)", "threshold", "met"],
        [[t.name, t.measured, t.threshold, yes_no(t.met)] for t in rows],
    )


# --------------------------------------------------------------------------
# Scaling, scheduler, profile
# --------------------------------------------------------------------------
def scaling(doc: Doc, runs: Runs) -> None:
    pairs = [("jobs-c100", "jobs-c100-p2"), ("arq-mj100", "arq-mj100-x2")]
    rows = []
    for one, two in pairs:
        for path, what in (
            ("e2e.jobs_per_s", "end-to-end"),
            ("drain.jobs_per_s", "drain"),
        ):
            a, b = agg(runs.get(one, []), path), agg(runs.get(two, []), path)
            rows.append([what, one, fmt(a), two, fmt(b), ratio(b and b[0], a and a[0])])
    doc.w("### Process scaling (2 cores)\n")
    doc.table(
        ["phase", "1 process", "jobs/s", "2 processes", "jobs/s", "2 ÷ 1"],
        rows,
        "Drain has no producer on the machine, so it shows what the workers "
        "themselves do with a second core; end-to-end shares the two cores with "
        "the producer process and Redis.",
    )


def schedules(doc: Doc, root: Path) -> None:
    path = root / "schedules.json"
    if not path.exists():
        return
    d = json.loads(path.read_text())
    ip, live = d.get("in_process", {}), d.get("live", {})
    ms = lambda v: "n/a" if v is None else f"{v * 1e3:,.1f} ms"  # noqa: E731
    q = lambda p: _int(get(ip, p))  # noqa: E731
    rows = [
        ["create N rows (bulk_create)", ms(d.get("create_seconds")), "", ""],
        [
            "worker cold load: all rows → heap",
            ms(get(ip, "cold_load.seconds")),
            q("cold_load.queries"),
            "Scheduler.load(None)",
        ],
        [
            "  of which the query and Django's converters",
            ms(get(ip, "cold_load_parts.read_rows.seconds")),
            q("cold_load_parts.read_rows.queries"),
            "cronjobs.read_rows, cronjobs.converted",
        ],
        [
            "  of which validation + next runs",
            ms(get(ip, "cold_load_parts.parse_seconds")),
            "",
            "entries.entry_from_row, calculate_next",
        ],
        [
            "reconcile, nothing changed (every 30 s)",
            ms(get(ip, "reconcile.seconds")),
            q("reconcile.queries"),
            "Scheduler.load(None)",
        ],
        [
            "reconcile, one row changed by a bulk update()",
            ms(get(ip, "reconcile_one_changed.seconds")),
            q("reconcile_one_changed.queries"),
            "Scheduler.load(None): only that row converted",
        ],
        [
            "one change: Schedule.save() in the web process",
            ms(get(ip, "one_change.save.seconds")),
            q("one_change.save.queries"),
            "UPDATE + PUBLISH on commit",
        ],
        [
            "one change: the worker reloads that row",
            ms(get(ip, "one_change.worker_apply.seconds")),
            q("one_change.worker_apply.queries"),
            "Scheduler.load([pk])",
        ],
        [
            "memory held by the loaded schedules",
            _mb(get(ip, "memory.retained_mb")),
            "",
            f"{_int(get(ip, 'memory.bytes_per_schedule'))} B a schedule (tracemalloc)",
        ],
        [
            "live worker: spawn → schedules loaded",
            _s(live.get("spawn_to_loaded_s")),
            "",
            live.get("loaded_log_line", ""),
        ],
        [
            "live worker: start-up to first job with N schedules",
            _s(live.get("startup_to_first_job_s")),
            "",
            "",
        ],
        [
            "live worker: PSS with N schedules loaded",
            _mb(live.get("worker_pss_mb")),
            "",
            "",
        ],
        [
            "live edit: run started after its due time",
            _msv(get(live, "edit.run_started_after_due_ms")),
            "",
            f"edited to run {get(live, 'edit.lead_s')} s after the save",
        ],
    ]
    database = str(d.get("database", "")).replace(f"{root.resolve()}/", "")
    doc.w(f"### Scheduler cost ({d.get('n'):,} schedules, {database})\n")
    doc.table(
        ["what", "time (median)", "SQL queries", "code path"],
        rows,
        f"Median of {d.get('reps')} repetitions; the in-process rows run the worker's "
        "own Scheduler code without a worker around it; the live rows start a real "
        "`jobs_worker` on the same database.",
    )


def _int(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.0f}"


def _mb(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.1f} MB"


def _s(v: Any) -> str:
    return "n/a" if v is None else f"{v:.2f} s"


def _msv(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.1f} ms"


def profile(doc: Doc, root: Path) -> None:
    stacks = profile_summary.stacks_file(root / "profile" / f"{JOBS}.pyspy.txt")
    if stacks is None:
        return
    prof = profile_summary.load(stacks)
    run = json.loads((root / "profile" / f"{JOBS}.json").read_text())
    doc.w(f"### Where the time goes ({JOBS}, py-spy)\n")
    doc.w(
        f"One extra run with N {_int(run.get('n'))}, not in the tables above (py-spy "
        f"slows what it samples): end-to-end {_int(get(run, 'e2e.jobs_per_s'))} "
        f"jobs/s, worker CPU {_int(get(run, 'e2e.worker_cpu_us_per_job'))} µs per "
        "job. By phase (profile_phases.py: the innermost frame naming a phase "
        "wins; µs = share x the CPU measured in that run):\n"
    )
    doc.w(*profile_phases.markdown(root))
    doc.w("#### The worker's samples by code location (profile_summary.py)\n")
    doc.w(*profile_summary.markdown(prof))


# --------------------------------------------------------------------------
# The anchors' tables, all configurations
# --------------------------------------------------------------------------
def detail(doc: Doc, runs: Runs, cfgs: list[str], root: Path) -> None:
    report_peers.enqueue_paths(doc, runs, cfgs)
    per_config(
        doc,
        runs,
        cfgs,
        "Throughput (jobs/s)",
        [
            col("enqueue, one call per job", "enqueue_single.jobs_per_s"),
            col("enqueue, sync code", "enqueue_sync.jobs_per_s"),
            col("enqueue, batched", "enqueue_batch.jobs_per_s"),
            ("batch kind", lambda r: r[0].get("batch_kind") or "none"),
            col("drain (backlog of N)", "drain.jobs_per_s"),
            col("end-to-end", "e2e.jobs_per_s"),
            col("enqueue rate during e2e", "e2e.enqueue_jobs_per_s_under_load"),
        ],
        "end-to-end = N / (last job completion - first enqueue call), one producer "
        "process enqueuing one job per call while the workers run; drain = workers "
        "started on a "
        "backlog of N, first to last completion.",
    )
    per_config(
        doc,
        runs,
        cfgs,
        "Latency, enqueue call → job start (ms)",
        [
            col("p50", "latency.p50_ms", 1),
            col("p90", "latency.p90_ms", 1),
            col("p99", "latency.p99_ms", 1),
            col("max", "latency.max_ms", 1),
            col("samples/run", "latency.count", 0, False),
            col("missing", "latency.missing", 0, False),
        ],
        "Single jobs with Poisson arrivals (mean gap 20 ms) against warm, otherwise "
        "idle workers.",
    )
    per_config(
        doc,
        runs,
        cfgs,
        "Result wait: job finished → waiter has the value (ms)",
        [
            col("async p50", "result_wait.after_finish.p50_ms", 2),
            col("async p99", "result_wait.after_finish.p99_ms", 2),
            col("sync p50", "result_wait_sync.after_finish.p50_ms", 2),
            col("sync p99", "result_wait_sync.after_finish.p99_ms", 2),
            col("enqueue → value p50", "result_wait.round_trip.p50_ms", 2),
            col("missing", "result_wait.missing", 0, False),
        ],
        "200 jobs with Poisson arrivals, each waited for through the library's own API "
        "(django-jobs `await result.aget()` / `result.get()`, Celery "
        "`AsyncResult.get()`, "
        "arq `await job.result()` which polls every 0.5 s by default). The job returns "
        "its own finish time as its last act. 'async' is the library's native API "
        "(for Celery its only, sync one).",
    )
    per_config(
        doc,
        runs,
        cfgs,
        "Worker memory, start-up and idle cost",
        [
            col("peak tree RSS MB", "memory.peak_tree_rss_mb", 1),
            col("peak tree PSS MB", "memory.peak_tree_pss_mb", 1),
            col("largest process PSS MB", "memory.peak_proc_pss_mb", 1),
            col("processes", "memory.peak_procs", 0, False),
            col("start-up to 1st job done (s)", "drain.startup_s", 2),
            col("idle CPU %", "idle.worker_cpu_pct", 2),
            col("idle Redis cmds/s", "idle.redis_cmds_per_s", 1),
        ],
        "RSS/PSS summed over the worker process and all its descendants, sampled every "
        "0.2 s; PSS splits copy-on-write pages shared between forked processes. Idle: "
        f"{idle_seconds(runs)} s of warm workers with nothing to do (CPU time comes "
        "in 10 ms ticks).",
    )
    per_config(
        doc,
        runs,
        cfgs,
        "CPU and Redis cost per job",
        [
            col("producer CPU µs (enqueue)", "enqueue_single.producer_cpu_us_per_job"),
            col("worker CPU µs (e2e)", "e2e.worker_cpu_us_per_job"),
            col("Redis CPU µs (e2e)", "e2e.redis.redis_cpu_us_per_job"),
            col("cmds enqueue", "enqueue_single.redis.cmds_per_job", 2, False),
            col(
                "round trips enqueue",
                "enqueue_single.redis.round_trips_per_job",
                2,
                False,
            ),
            col("cmds total (e2e)", "e2e.redis.cmds_per_job", 2),
            col("round trips total (e2e)", "e2e.redis.round_trips_per_job", 2),
            (
                "bytes in+out (e2e)",
                lambda r: fmt(
                    _sum(
                        r,
                        "e2e.redis.net_in_bytes_per_job",
                        "e2e.redis.net_out_bytes_per_job",
                    )
                ),
            ),
            col(
                "Redis mem per queued job (B)",
                "enqueue_single.redis.used_memory_delta_per_job",
            ),
        ],
        "Broker-Redis INFO commandstats / total_reads_processed deltas divided by N "
        "(harness counters live on a separate Redis). 'enqueue' = producer alone; "
        "'total (e2e)' = "
        "producer + workers + their background traffic during the end-to-end phase. "
        "Commands inside Lua scripts count as commands; a round trip = one client read "
        "event on the server.",
    )
    ceiling_tables(doc, runs, cfgs, root)
    breakdown(doc, runs, cfgs)
    traces(doc, root)


def idle_seconds(runs: Runs) -> str:
    secs = [get(r, "idle.seconds") for rs in runs.values() for r in rs]
    secs = [s for s in secs if isinstance(s, (int, float))]
    return f"{statistics.median(secs):.0f}" if secs else "n/a"


def ceiling_tables(doc: Doc, runs: Runs, cfgs: list[str], root: Path) -> None:
    ceil = ceiling(root)
    if not ceil.get("plain"):
        return
    plain_med = statistics.median(ceil["plain"].values())
    p16_med = (
        statistics.median(ceil["P16"].values()) if ceil.get("P16") else float("nan")
    )
    doc.w("### Redis physical ceiling (redis-benchmark, 50 clients, -n 200000)\n")
    rows = [
        [
            k,
            f"{ceil['plain'][k]:,.0f}",
            f"{ceil.get('P16', {}).get(k, float('nan')):,.0f}",
        ]
        for k in sorted(ceil["plain"])
    ]
    rows.append(["median of the five", f"{plain_med:,.0f}", f"{p16_med:,.0f}"])
    doc.table(["command", "requests/s", "requests/s with -P 16"], rows)
    per_config(
        doc,
        runs,
        cfgs,
        "Implied ceiling per config (jobs/s)",
        [
            col("round trips/job", "e2e.redis.round_trips_per_job", 2, False),
            col("cmds/job", "e2e.redis.cmds_per_job", 2, False),
            (
                "ceiling = plain rps ÷ round trips",
                lambda r: _div(plain_med, agg(r, "e2e.redis.round_trips_per_job")),
            ),
            (
                "ceiling = P16 rps ÷ cmds",
                lambda r: _div(p16_med, agg(r, "e2e.redis.cmds_per_job")),
            ),
            col("measured e2e", "e2e.jobs_per_s", 0, False),
            col("measured drain", "drain.jobs_per_s", 0, False),
        ],
        f"Median redis-benchmark rates of the five commands: {plain_med:,.0f}/s plain, "
        f"{p16_med:,.0f}/s with -P 16, Redis alone on the box; in the real runs it "
        "shares the 2 cores with the workers and the producer.",
    )


def breakdown(doc: Doc, runs: Runs, cfgs: list[str]) -> None:
    rows = []
    for c in cfgs:
        per: dict[str, list[float]] = defaultdict(list)
        for r in runs[c]:
            for k, v in (get(r, "e2e.redis.cmd_breakdown_per_job") or {}).items():
                per[k].append(v)
        items = sorted(
            ((k, statistics.median(v)) for k, v in per.items()), key=lambda kv: -kv[1]
        )
        rows.append([c, ", ".join(f"{k} {v:.2f}" for k, v in items if v >= 0.01)])
    doc.w("### Redis commands per job by command (end-to-end phase, median)\n")
    doc.table(["config", "commands per job"], rows)


def traces(doc: Doc, root: Path) -> None:
    files = (
        sorted((root / "traces").glob("*.json")) if (root / "traces").exists() else []
    )
    if not files:
        return
    rows = []
    for p in files:
        d = json.loads(p.read_text())
        n, enq, drn = d["n"], d["counts"]["enqueue"], d["counts"]["drain"]
        rows.append(
            [
                d["config"],
                str(n),
                f"{sum(enq.values())} ({sum(enq.values()) / n:.1f}/job)",
                f"{sum(drn.values())} ({sum(drn.values()) / n:.1f}/job)",
            ]
        )
    doc.w("### MONITOR traces (small N; raw logs in traces/)\n")
    doc.table(
        [
            "config",
            "N",
            "enqueue phase: commands",
            "drain phase (incl. start-up, idle polls): commands",
        ],
        rows,
    )


def _sum(runs: list[dict[str, Any]], a: str, b: str) -> Agg | None:
    vals = [
        get(r, a) + get(r, b)
        for r in runs
        if get(r, a) is not None and get(r, b) is not None
    ]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals)


def _div(num: float, den: Agg | None) -> str:
    if den is None or not den[0]:
        return "n/a"
    return f"{num / den[0]:,.0f}"


# --------------------------------------------------------------------------
def summary(
    doc: Doc, runs: Runs, skipped: dict[str, str], cfgs: list[str], root: Path
) -> None:
    doc.w(f"## Results from `{root.name}`\n")
    doc.w(
        "```", read_text(root / "versions.txt"), read_text(root / "load.txt"), "```", ""
    )
    rows = []
    for c in cfgs:
        rs = runs[c]
        errs = sum(len(r.get("errors", [])) for r in rs)
        eo = [r.get("exactly_once_check", {}) for r in rs]
        bad = [
            f"{e.get('counted')}/{e.get('expected')}"
            for e in eo
            if e and not e.get("ok")
        ]
        check = "ok" if not bad else "MISMATCH " + ", ".join(bad)
        rows.append(
            [c, rs[0]["system"], str(rs[0]["n"]), str(len(rs)), str(errs), check]
        )
    rows += [
        [c, "", "", "0", "n/a", f"n/a ({why})"] for c, why in sorted(skipped.items())
    ]
    doc.table(["config", "system", "N", "reps", "errors", "exactly-once check"], rows)


def memory_floor(doc: Doc, root: Path) -> None:
    path = root / "memory_floor.txt"
    if not path.exists():
        return
    doc.w(
        "### A worker's memory floor (memory_floor.py)\n",
        "Anonymous PSS of fresh processes after each import stage (shared-library "
        "pages come on top); the last line is django-jobs' worker as "
        "`manage.py jobs_worker` loads it, before it runs anything.\n",
        "```",
        *path.read_text().rstrip().splitlines(),
        "```",
        "",
    )


def main() -> None:
    root = Path(sys.argv[1])
    runs, skipped = load_runs(root)
    cfgs = [c for c in ORDER if c in runs] + sorted(c for c in runs if c not in ORDER)
    doc = Doc()
    summary(doc, runs, skipped, cfgs, root)
    headline(doc, runs, skipped)
    report_peers.ext_peers(doc, runs, skipped)
    targets(doc, runs)
    scaling(doc, runs)
    schedules(doc, root)
    memory_floor(doc, root)
    profile(doc, root)
    detail(doc, runs, cfgs, root)
    print("\n".join(doc.lines))


if __name__ == "__main__":
    main()
