"""Prometheus metrics read from Redis at scrape time, and who may scrape them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.tasks import task_backends
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from jobs.dashboard.exporter import render
from jobs.testing import drain
from tests import tasks
from tests.integration.test_enqueue import _dead_url, _tasks_at

pytestmark = pytest.mark.django_db(transaction=True)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counts_durations_and_queue_lengths():
    for i in range(3):
        tasks.add.enqueue(i, i)
    tasks.boom.enqueue()
    drain()  # a stopping worker flushes its counts
    tasks.add.using(run_after=timedelta(hours=1)).enqueue(9, 9)
    tasks.record.using(queue_name="low").enqueue("waiting")
    got = samples(render(task_backends["default"]).decode())
    add = (("task", "tests.tasks.add"),)
    assert got[("jobs_finished_total", (("status", "SUCCESSFUL"), *add))] == 3
    assert (
        got[
            (
                "jobs_finished_total",
                (("status", "FAILED"), ("task", "tests.tasks.boom")),
            )
        ]
        == 1
    )
    assert got[("jobs_duration_seconds_count", add)] == 3
    assert got[("jobs_duration_seconds_bucket", (("le", "+Inf"), *add))] == 3
    assert got[("jobs_duration_seconds_bucket", (("le", "300.0"), *add))] == 3
    assert got[("jobs_duration_seconds_sum", add)] >= 0
    assert got[("jobs_queue_deferred", (("queue", "default"),))] == 1
    assert got[("jobs_queue_due", (("queue", "low"),))] == 1
    assert got[("jobs_queue_length", (("queue", "reports"),))] == 0
    assert got[("jobs_workers", ())] == 0  # the burst worker is gone


def test_buckets_are_cumulative(r):
    r.hset(
        "jobs:metrics",
        mapping={
            "bucket|t|0.005": 2,
            "bucket|t|1.0": 1,
            "bucket|t|+Inf": 1,
            "sum|t": 400.5,
            "count|t|SUCCESSFUL": 4,
        },
    )
    got = samples(render(task_backends["default"]).decode())
    label = ("task", "t")
    assert got[("jobs_duration_seconds_bucket", (("le", "0.005"), label))] == 2
    assert got[("jobs_duration_seconds_bucket", (("le", "0.5"), label))] == 2
    assert got[("jobs_duration_seconds_bucket", (("le", "1.0"), label))] == 3
    assert got[("jobs_duration_seconds_bucket", (("le", "+Inf"), label))] == 4
    assert got[("jobs_duration_seconds_sum", (label,))] == 400.5


def test_live_workers_and_their_capacity(worker_process):
    from tests.servers import wait_until

    worker_process("-c", "7")

    def workers() -> float:
        return samples(render(task_backends["default"]).decode())[("jobs_workers", ())]

    wait_until(lambda: workers() == 1, what="the worker registered")
    got = samples(render(task_backends["default"]).decode())
    assert got[("jobs_worker_capacity", ())] == 7
    assert 0 <= got[("jobs_worker_heartbeat_age_seconds", ())] < 30


@override_settings(JOBS_METRICS_TOKEN="s3cret")
def test_the_view_wants_the_token_or_staff(client, admin_client):
    assert client.get("/metrics").status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    answer = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=")
    assert "jobs_queue_length" in answer.content.decode()
    assert admin_client.get("/admin/jobs/dashboard/metrics/").status_code == 200
    assert (
        client.post("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 405
    )


def test_without_a_token_only_staff(client, admin_client):
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403
    assert admin_client.get("/metrics").status_code == 200


def test_redis_down_answers_503(admin_client):
    with override_settings(TASKS=_tasks_at(_dead_url())):
        answer = admin_client.get("/metrics")
    assert answer.status_code == 503
