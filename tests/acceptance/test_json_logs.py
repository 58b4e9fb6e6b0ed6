"""`jobs_worker --log-format json`: one JSON object a line, with job id and task."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from jobs.logs import JsonFormatter, current_job
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_logs_json_with_the_job_id_and_task(worker_process):
    failed = tasks.boom.enqueue("logged as json")
    worker = worker_process("--burst", "--log-format", "json")
    assert worker.wait(30) == 0
    records = [json.loads(line) for line in worker.output().splitlines() if line]
    assert {"time", "level", "logger", "message", "job_id", "task"} <= records[0].keys()
    failure = next(r for r in records if "attempt 1 failed" in r["message"])
    assert failure["job_id"] == failed.id
    assert failure["task"] == "tests.tasks.boom"
    assert failure["level"] == "WARNING"
    assert failure["logger"] == "jobs.worker"
    started = next(r for r in records if r["message"].startswith("worker "))
    assert started["job_id"] == "-"


def test_the_formatter_reads_the_running_job_itself():
    formatter = JsonFormatter()
    token = current_job.set(("job-1", "app.tasks.work"))
    try:
        try:
            raise KeyError("missing")
        except KeyError:
            record = logging.LogRecord(
                "app", logging.ERROR, __file__, 1, "failed %s", ("here",), True
            )
            record.exc_info = sys.exc_info()
        line = json.loads(formatter.format(record))
    finally:
        current_job.reset(token)
    assert line["message"] == "failed here"
    assert (line["job_id"], line["task"]) == ("job-1", "app.tasks.work")
    assert "KeyError" in line["exc_info"]


def test_the_worker_rejects_an_unknown_log_format(worker_process):
    worker = worker_process("--log-format", "xml")
    assert worker.wait(30) != 0
    assert "invalid choice: 'xml'" in worker.output()
