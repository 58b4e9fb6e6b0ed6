"""Prometheus metrics, read from Redis at scrape time.

    # urls.py (the dashboard's URLs include it as .../dashboard/metrics/)
    path("metrics/", jobs.exporter.metrics_view)

Any web process can answer a scrape: the numbers live in Redis (queues, the
workers' registry, the `jobs:metrics` hash the workers add to every heartbeat),
not in the process that serves them. Set JOBS_METRICS_TOKEN and scrape with
`Authorization: Bearer <token>`; without it only logged-in staff with the
`jobs.view_dashboard` permission may read.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterator
from typing import cast

from django.http import HttpRequest, HttpResponse
from django.tasks import task_backends
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry
from redis.exceptions import RedisError

from jobs.backend import JobsBackend
from jobs.conf import jobs_settings
from jobs.dashboard import monitor, permissions
from jobs.dashboard.monitor import client_of
from jobs.redis.keys import METRICS_KEY
from jobs.worker.metrics import BUCKET_NAMES

Metric = GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily


class JobsCollector(Collector):
    """Queue, worker and per-task job metrics of one backend."""

    def __init__(self, backend: JobsBackend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        yield from self.queue_metrics()
        yield from self.worker_metrics()
        yield from self.task_metrics()

    def queue_metrics(self) -> Iterator[Metric]:
        families = {
            "length": "Unfinished jobs in the queue (due, running and deferred).",
            "due": "Jobs due now, waiting for a free worker.",
            "running": "Jobs running now.",
            "deferred": "Jobs due later (run_after, retry backoff).",
        }
        gauges = {
            name: GaugeMetricFamily(f"jobs_queue_{name}", text, labels=["queue"])
            for name, text in families.items()
        }
        for stats in monitor.queue_stats(self.backend):
            for name, gauge in gauges.items():
                gauge.add_metric([stats.name], getattr(stats, name))
        yield from gauges.values()

    def worker_metrics(self) -> Iterator[Metric]:
        alive = monitor.workers(self.backend)
        yield GaugeMetricFamily("jobs_workers", "Live worker processes.", len(alive))
        yield GaugeMetricFamily(
            "jobs_worker_capacity",
            "Jobs the live workers can run at once (their concurrency, summed).",
            sum(w.concurrency for w in alive),
        )
        yield GaugeMetricFamily(
            "jobs_worker_heartbeat_age_seconds",
            "Seconds since the stalest live worker's last heartbeat.",
            max((w.heartbeat_age for w in alive), default=0.0),
        )

    def task_metrics(self) -> Iterator[Metric]:
        raw = cast("dict[bytes, bytes]", client_of(self.backend).hgetall(METRICS_KEY))
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        finished = CounterMetricFamily(
            "jobs_finished",
            "Job runs ended, by task and status (RETRIED: failed, run again).",
            labels=["task", "status"],
        )
        buckets: defaultdict[str, dict[str, int]] = defaultdict(dict)
        sums: dict[str, float] = {}
        for name, value in sorted(fields.items()):
            kind, _, rest = name.partition("|")
            if kind == "count":
                task, _, status = rest.rpartition("|")
                finished.add_metric([task, status], float(value))
            elif kind == "bucket":
                task, _, le = rest.rpartition("|")
                buckets[task][le] = int(value)
            elif kind == "sum":
                sums[rest] = float(value)
        yield finished
        yield self.durations(buckets, sums)

    @staticmethod
    def durations(
        buckets: dict[str, dict[str, int]], sums: dict[str, float]
    ) -> HistogramMetricFamily:
        """The workers' per-bucket counts as Prometheus' cumulative buckets."""
        histogram = HistogramMetricFamily(
            "jobs_duration_seconds", "Seconds job runs took.", labels=["task"]
        )
        for task in sorted(buckets.keys() | sums.keys()):
            running_total, cumulative = 0, []
            for le in BUCKET_NAMES:
                running_total += buckets.get(task, {}).get(le, 0)
                cumulative.append((le, float(running_total)))
            histogram.add_metric([task], cumulative, sums.get(task, 0.0))
        return histogram


def render(backend: JobsBackend) -> bytes:
    """The backend's metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector(backend))
    return generate_latest(registry)


def allowed(request: HttpRequest) -> bool:
    """A request with the bearer token (when one is set) or from a user who may
    see the dashboard."""
    token = jobs_settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer "):
        return secrets.compare_digest(given[7:].encode(), token.encode())
    user = getattr(request, "user", None)
    staff = bool(user is not None and user.is_staff)  # as the admin's own pages
    return staff and permissions.has(request, permissions.VIEW)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the default backend's metrics to Prometheus."""
    if not allowed(request):
        return HttpResponse(
            "Forbidden: send Authorization: Bearer <JOBS_METRICS_TOKEN>.\n",
            status=403,
            content_type="text/plain",
        )
    backend = task_backends["default"]
    if not isinstance(backend, JobsBackend):
        return HttpResponse("TASKS['default'] is not a JobsBackend.\n", status=500)
    try:
        body = render(backend)
    except (RedisError, OSError) as e:
        return HttpResponse(f"Redis unavailable: {e}\n", status=503)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


__all__ = ["JobsCollector", "metrics_view", "render"]
