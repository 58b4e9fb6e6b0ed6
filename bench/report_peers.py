"""The report's tables for issue 19: django-jobs against BullMQ and Sidekiq,
and every configuration's enqueue paths side by side.

BullMQ (Node) and Sidekiq (Ruby) run under the same harness as the Python
peers (their producers through native.py), so every figure here comes from
the same phases and formulas as the rest of the report.
"""

from __future__ import annotations

from typing import Any

from tables import (
    SYNC_PRODUCERS,
    Doc,
    Metric,
    Runs,
    agg,
    fmt,
    get,
    ratio_table,
)

EXT_PEERS = [
    ("bullmq-c100", "BullMQ c100, results kept (its default)"),
    ("bullmq-c100-roc", "BullMQ c100, removeOnComplete"),
    ("bullmq-default", "BullMQ defaults (concurrency 1)"),
    ("sidekiq-c10", "Sidekiq c10 (its default)"),
    ("sidekiq-c100", "Sidekiq c100"),
]
P2 = "jobs-c100-p2"

EXT_ROWS = [
    Metric("end-to-end (jobs/s)", "e2e.jobs_per_s", "higher"),
    Metric("drain (jobs/s)", "drain.jobs_per_s", "higher"),
    Metric("drain (jobs/s)", "drain.jobs_per_s", "higher", jobs_cfg=P2),
    Metric(
        "enqueue, one call at a time (jobs/s)", "enqueue_single.jobs_per_s", "higher"
    ),
    Metric(
        "enqueue, 100 concurrent on one event loop (jobs/s)",
        "enqueue_batch.jobs_per_s",
        "higher",
    ),
    Metric(
        "enqueue from sync code, one at a time (jobs/s)",
        "enqueue_sync.jobs_per_s",
        "higher",
        peer_path="enqueue_single.jobs_per_s",
        peer_sync_only=True,
    ),
    Metric(
        "enqueue from sync code, 16 threads (jobs/s)",
        "enqueue_threads.jobs_per_s",
        "higher",
    ),
    Metric("enqueue→start p50 (ms)", "latency.p50_ms", "lower", 2),
    Metric("enqueue→start p99 (ms)", "latency.p99_ms", "lower", 2),
    Metric("worker CPU / job (µs, e2e)", "e2e.worker_cpu_us_per_job", "lower"),
    Metric("Redis CPU / job (µs, e2e)", "e2e.redis.redis_cpu_us_per_job", "lower"),
    Metric("Redis commands / job (e2e)", "e2e.redis.cmds_per_job", "lower", 2),
    Metric(
        "Redis round trips / job (e2e)", "e2e.redis.round_trips_per_job", "lower", 2
    ),
    Metric(
        "producer CPU / enqueue (µs)", "enqueue_single.producer_cpu_us_per_job", "lower"
    ),
    Metric("worker PSS, largest process (MB)", "memory.peak_proc_pss_mb", "lower", 1),
    Metric("start-up to first job done (s)", "drain.startup_s", "lower", 2),
]


def ext_peers(doc: Doc, runs: Runs, skipped: dict[str, str]) -> None:
    """django-jobs (jobs-c100 unless named) against BullMQ and Sidekiq, as ratios."""
    head, rows = ratio_table(runs, skipped, EXT_ROWS, EXT_PEERS)
    doc.w("### django-jobs against BullMQ and Sidekiq (issue 19)\n")
    doc.table(
        head,
        rows,
        "Median [min-max] over the repetitions; ratio = django-jobs ÷ peer (above 1 "
        "is better for rates, below 1 for times, CPU, Redis cost and memory). "
        "BullMQ and Sidekiq run their own producers and workers (Node, Ruby) "
        "under the same harness, phases and formulas. Sidekiq's client is sync "
        "only: its one-at-a-time figure is also its sync-code figure, and it has "
        "no event-loop concurrency; Node runs JavaScript on one thread, so BullMQ "
        "has no threaded or sync enqueue. Sidekiq (open source) stores no results "
        "and fetches without an acknowledgement (a job is lost if its process dies "
        "mid-run); BullMQ keeps completed jobs, without expiry, by default.",
    )


def _concurrent(run: dict[str, Any]) -> bool:
    kind = run.get("batch_kind") or ""
    return "gather" in kind or "Promise.all" in kind


def _pick(rs: list[dict[str, Any]], path: str, when: bool, spread: bool = True) -> str:
    return fmt(agg(rs, path), spread=spread) if when else "n/a"


def _enqueue_row(cfg: str, rs: list[dict[str, Any]]) -> list[str]:
    first = rs[0]
    concurrent = _concurrent(first)
    bulk_kind = get(first, "enqueue_bulk.kind") or (
        None if concurrent else first.get("batch_kind")
    )
    bulk_path = "enqueue_bulk" if get(first, "enqueue_bulk") else "enqueue_batch"
    sync_only = first["system"] in SYNC_PRODUCERS
    sync_path = "enqueue_single" if sync_only else "enqueue_sync"
    cpu = "producer_cpu_us_per_job"
    return [
        cfg,
        fmt(agg(rs, "enqueue_single.jobs_per_s")),
        _pick(rs, "enqueue_batch.jobs_per_s", concurrent),
        _pick(rs, f"{bulk_path}.jobs_per_s", bool(bulk_kind))
        + (f" ({bulk_kind})" if bulk_kind else ""),
        fmt(agg(rs, f"{sync_path}.jobs_per_s")),
        fmt(agg(rs, "enqueue_threads.jobs_per_s")),
        " / ".join(
            [
                fmt(agg(rs, f"enqueue_single.{cpu}"), spread=False),
                _pick(rs, f"enqueue_batch.{cpu}", concurrent, spread=False),
                fmt(agg(rs, f"{sync_path}.{cpu}"), spread=False),
                fmt(agg(rs, f"enqueue_threads.{cpu}"), spread=False),
            ]
        ),
        " / ".join(
            _per_k(rs, f"{path}.redis.connections_per_job")
            for path in ("enqueue_single", "enqueue_batch", "enqueue_threads")
        ),
    ]


def _per_k(rs: list[dict[str, Any]], path: str) -> str:
    a = agg(rs, path)
    return "n/a" if a is None else f"{a[0] * 1000:,.0f}"


def enqueue_paths(doc: Doc, runs: Runs, cfgs: list[str]) -> None:
    """Every configuration's enqueue paths: rates and producer CPU."""
    counts = (get(r, "enqueue_threads.threads") for rs in runs.values() for r in rs)
    threads = next((t for t in counts if t), 16)
    head = [
        "config",
        "one call at a time",
        "100 concurrent, one event loop",
        "batch / bulk API of 100",
        "sync code, one at a time",
        f"sync code, {threads} threads",
        "producer CPU µs / enqueue (one at a time / 100 concurrent / sync / threads)",
        "Redis connections opened / 1,000 enqueues (one at a time / 100 concurrent "
        "or batch / threads)",
    ]
    doc.w("### Enqueue paths (jobs/s, N jobs, workers down)\n")
    doc.table(
        head,
        [_enqueue_row(c, runs[c]) for c in cfgs],
        "Each a fresh producer process enqueueing N jobs into an idle queue. "
        "'one call at a time': the library's native API, awaited one job after "
        "the other (django-jobs `await task.aenqueue()` on uvloop). '100 "
        "concurrent': 100 enqueue calls in flight on one event loop, repeated "
        "(asyncio.gather, Promise.all). 'sync code': django-jobs `task.enqueue()`; "
        "for Celery, Dramatiq and Sidekiq the only (sync) API, the same as the "
        f"first column. '{threads} threads': the sync API from {threads} threads "
        "sharing the task (a threaded WSGI server's views); n/a for "
        "asyncio-only libraries and Node. Producer CPU includes every thread; "
        "connections: Redis's total_connections_received over the phase.",
    )
