"""The result record (jobs.records), the metrics a worker counts
(jobs.worker.metrics) and a job prepared for the ENQUEUE script
(jobs.enqueue): pure, no Redis."""

from __future__ import annotations

import itertools
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.jobs import deserialize_result
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from jobs import records
from jobs.conf import JobsOptions
from jobs.enqueue import ENTROPY_CHUNK, counted, due, new_id, prepare
from jobs.exceptions import PayloadTooLarge, SerializationError, TaskFailed
from jobs.failures import arq_loads
from jobs.records import arq_result
from jobs.redis.keys import UNIQUE_TTL
from jobs.results import RedisResultStore, ResultStore
from jobs.serialization import JobPayload
from jobs.worker.metrics import BUCKET_NAMES, JobMetrics
from tests import tasks


def test_an_error_entry_has_the_class_message_and_traceback():
    try:
        raise KeyError("missing")
    except KeyError as e:
        entry = records.error_entry(e)
    assert entry["exception_class_path"] == "builtins.KeyError"
    assert entry["message"] == "'missing'"
    assert entry["traceback"].startswith("Traceback (most recent call last)")


def test_failed_appends_the_error_and_keeps_the_rest():
    base: records.Record = {
        "id": "j",
        "status": "RUNNING",
        "task": "t",
        "backend": "default",
        "args": [1],
        "kwargs": {},
        "enqueued_at": None,
        "started_at": None,
        "finished_at": None,
        "last_attempted_at": None,
        "errors": [records.error_entry(ValueError("first"))],
        "worker_ids": ["w"],
    }
    failed = records.failed(base, RuntimeError("second"), at="2026-01-01T00:00:00")
    assert (
        failed["status"] == "FAILED" and failed["finished_at"] == "2026-01-01T00:00:00"
    )
    assert [e["message"] for e in failed["errors"]] == ["first", "second"]
    assert base["status"] == "RUNNING" and len(base["errors"]) == 1  # a copy


@pytest.mark.parametrize(
    "raw", [b"\x80\x04pickle", b"not json", b"[1, 2]", b'{"id": 1, "status": "x"}']
)
def test_decode_refuses_what_is_not_a_record(raw):
    with pytest.raises(SerializationError):
        records.decode(raw)


def test_a_record_survives_encode_and_decode():
    record = {"id": "j", "status": "SUCCESSFUL", "return_value": {"a": [1, 2.5]}}
    assert records.decode(records.encode(record)) == record  # type: ignore[arg-type]


def test_metrics_count_by_status_and_bucket_durations():
    metrics = JobMetrics()
    metrics.observe("t", "SUCCESSFUL", 0.003)
    metrics.observe("t", "SUCCESSFUL", 0.2)
    metrics.observe("t", "FAILED", 1000.0)
    metrics.observe("t", "RETRIED", None)  # never ran: counted, not timed
    assert metrics.counts["count|t|SUCCESSFUL"] == 2
    assert metrics.counts["count|t|RETRIED"] == 1
    assert metrics.counts["bucket|t|0.005"] == 1
    assert metrics.counts["bucket|t|0.25"] == 1
    assert metrics.counts[f"bucket|t|{BUCKET_NAMES[-1]}"] == 1  # +Inf
    assert metrics.seconds["sum|t"] == pytest.approx(1000.203)


@pytest.fixture
def config() -> JobsOptions:
    return JobsOptions(max_payload=2000)


def test_prepare_checks_and_serializes_without_redis(config):
    store = ResultStore(LocMemCache("prepare-test", {}), 60)
    job = prepare(
        tasks.add,
        [1, 2],
        {},
        alias="default",
        config=config,
        store=store,
        meta={"m": 1},
    )
    result_id = job.result.id
    assert job.keys == [
        f"arq:job:{result_id}",
        "arq:queue",
        "jobs:wake:default",
        f"jobs:unique:{result_id}",
        "",  # the record is stored outside the queue's Redis
        "jobs:priorities:default",  # written only for a priority other than 0
    ]
    payload = JobPayload.decode(job.args[1])
    assert (payload.task_path, payload.args, payload.meta) == (
        "tests.tasks.add",
        [1, 2],
        {"m": 1},
    )
    assert job.args[4] == ""  # no caller-chosen id: nothing to reserve
    assert not job.args[5] and job.record["status"] == "READY"
    assert job.args[6] == 60_000
    assert job.args[3] == int(config.expires * 1000)  # due now: the job's TTL
    assert job.args[8] == ""  # priority 0: arq's queue, nothing to list


def test_prepare_names_the_priority_queue_and_the_unique_lock(config):
    store = ResultStore(LocMemCache("prepare-test", {}), 60)
    task = tasks.add.using(priority=7, unique=True)
    job = prepare(task, [1, 2], {}, alias="default", config=config, store=store)
    again = prepare(task, [1, 2], {}, alias="default", config=config, store=store)
    assert job.keys[1] == "jobs:queue:default:7"
    assert job.args[8] == 7
    assert job.keys[6:8] == ["", ""]  # no counting keys (see enqueue.counted)
    assert job.keys[8].startswith("jobs:lock:tests.tasks.add:args:")
    assert again.keys[8] == job.keys[8] and again.result.id != job.result.id
    run = counted(job, "runs", "unwritten", "7")  # a schedule's run of it
    assert run.keys[6:] == ["runs", "unwritten", job.keys[8]]
    assert run.args[9] == "7" and run.args[10] > 0  # the field, the epoch


def test_prepare_on_the_queues_redis_hands_the_record_to_the_script(config):
    cache = RedisCache("redis://127.0.0.1:1/0", {})
    store = RedisResultStore(cache, 60, config, colocated=True)
    job = prepare(
        tasks.add, [1, 2], {}, alias="default", config=config, store=store, job_id="x"
    )
    assert job.keys[4] == store.raw_key("x")
    assert json.loads(job.args[5])["id"] == "x"
    assert job.args[4] == 60_000  # the id is reserved as long as the record lives
    reserved = prepare(
        tasks.add,
        [1, 2],
        {},
        alias="default",
        config=config,
        store=store,
        job_id="x",
        reserve=UNIQUE_TTL,
    )
    assert reserved.args[4] == UNIQUE_TTL * 1000


def test_a_deferred_job_is_scored_at_its_time_and_lives_longer(config):
    store = ResultStore(LocMemCache("prepare-test", {}), 60)
    later = tasks.add.using(run_after=timedelta(hours=1))
    job = prepare(later, [1, 2], {}, alias="default", config=config, store=store)
    enqueued = job.result.enqueued_at
    score, due_ms = due(later.run_after, enqueued)
    assert float(job.args[2]) == pytest.approx(score, abs=0.001)
    assert due_ms == int(score)
    # Its TTL counts from when it is due, not from its enqueue: from the times
    # the job carries, so the clock read by using() and prepare() may differ.
    lives_ms = due_ms + int(config.expires * 1000) - int(enqueued.timestamp() * 1000)
    assert job.args[3] == lives_ms
    assert lives_ms > 3500_000 + config.expires * 1000  # the hour's deferral


def test_refusals_come_before_anything_is_written(config):
    store = ResultStore(LocMemCache("prepare-test", {}), 60)
    with pytest.raises(SerializationError, match=r"args\[0\]"):
        prepare(tasks.add, [object()], {}, alias="default", config=config, store=store)
    with pytest.raises(PayloadTooLarge, match="MAX_PAYLOAD"):
        prepare(
            tasks.add, ["x" * 3000, 1], {}, alias="default", config=config, store=store
        )


def test_arq_result_is_what_arqs_own_reader_parses() -> None:
    record = {
        "id": "j1",
        "status": "FAILED",
        "task": "tests.tasks.boom",
        "backend": "default",
        "args": [1],
        "kwargs": {"k": 2},
        "enqueued_at": "2026-01-01T00:00:00+00:00",
        "started_at": "2026-01-01T00:00:01+00:00",
        "finished_at": "2026-01-01T00:00:02+00:00",
        "last_attempted_at": "2026-01-01T00:00:01+00:00",
        "errors": [
            {"exception_class_path": "nowhere.Oops", "traceback": "", "message": "m"}
        ],
        "worker_ids": ["w"],
    }
    raw = arq_result(record, 2, "arq:queue")
    info = deserialize_result(raw, deserializer=json.loads)
    assert (info.success, info.result, info.job_try, info.job_id) == (
        False,
        "nowhere.Oops: m",
        2,
        "j1",
    )
    assert info.finish_time.timestamp() - info.enqueue_time.timestamp() == 2
    # jobs' deserializer: a class not loaded here comes back as TaskFailed.
    rebuilt = deserialize_result(raw, deserializer=arq_loads).result
    assert isinstance(rebuilt, TaskFailed)
    assert str(rebuilt) == "nowhere.Oops: m"


def test_job_ids_are_uuid4_hex_and_never_repeat():
    ids = [new_id() for _ in range(3 * ENTROPY_CHUNK // 16)]  # three refills
    assert len(set(ids)) == len(ids)
    for job_id in ids:
        assert uuid.UUID(hex=job_id).hex == job_id
        assert uuid.UUID(hex=job_id).version == 4
        assert uuid.UUID(hex=job_id).variant == uuid.RFC_4122


def test_a_forked_child_does_not_hand_out_its_parents_ids():
    new_id()  # the buffer holds unread bytes that the child would inherit
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32
    assert child != new_id()


@pytest.mark.parametrize("use_tz", [True, False])
def test_arq_result_from_the_workers_times_is_the_one_from_the_stamps(
    use_tz: bool, settings: Any
) -> None:
    """The worker hands arq_result the datetimes it stamped the record from:
    the bytes are those of reading the stamps back (aware UTC, or naive
    TIME_ZONE time with USE_TZ off, in a zone with DST)."""
    settings.USE_TZ, settings.TIME_ZONE = use_tz, "America/New_York"
    moments = [
        datetime(2026, 3, 8, 6, 59, 59, 999_999, tzinfo=UTC),  # just before DST
        datetime(2026, 11, 1, 5, 30, 0, 1, tzinfo=UTC),  # in the repeated hour
        datetime(2026, 12, 2, 13, 0, 0, 123_456, tzinfo=UTC),
    ]
    for enqueued, started, finished in itertools.permutations(moments):
        times = (
            records.for_user(enqueued),
            records.for_user(started),
            records.for_user(finished),
        )
        record = {
            "id": "j1",
            "status": "SUCCESSFUL",
            "task": "tests.tasks.add",
            "backend": "default",
            "args": [1, 2],
            "kwargs": {},
            "enqueued_at": records.stamp(times[0]),
            "started_at": records.stamp(times[1]),
            "finished_at": records.stamp(times[2]),
            "last_attempted_at": records.stamp(times[1]),
            "errors": [],
            "worker_ids": ["w"],
            "return_value": 3,
        }
        parsed = arq_result(record, 1, "arq:queue")  # type: ignore[arg-type]
        given = arq_result(record, 1, "arq:queue", times)  # type: ignore[arg-type]
        assert given == parsed
        info = deserialize_result(given, deserializer=json.loads)
        assert info.finish_time == finished.replace(
            microsecond=finished.microsecond // 1000 * 1000
        )


def _arq_reference(record: dict[str, Any], attempt: int, queue_key: str) -> bytes:
    """arq's record as one json.dumps of arq's fields (what arq_result wrote
    before it wrote the parts itself)."""

    def ms(iso: str | None) -> int | None:
        return (
            None if iso is None else int(datetime.fromisoformat(iso).timestamp() * 1000)
        )

    finished = ms(record["finished_at"]) or 0
    data: dict[str, Any] = {
        "t": attempt,
        "f": record["task"],
        "a": record["args"],
        "k": record["kwargs"],
        "et": ms(record["enqueued_at"]) or finished,
        "s": record["status"] == "SUCCESSFUL",
        "r": record.get("return_value"),
        "st": ms(record["last_attempted_at"]) or finished,
        "ft": finished,
        "q": queue_key,
        "id": record["id"],
    }
    if not data["s"] and record["errors"]:
        error = record["errors"][-1]
        data["e"] = error["exception_class_path"]
        data["r"] = f"{error['exception_class_path']}: {error['message']}"
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"return_value": None, "args": [], "kwargs": {}},
        {"return_value": [], "args": [[]], "kwargs": {"": {}}},
        {"return_value": {"é": [1.5, -0.0, 2**70, '\n"\\\u2028']}, "args": ["ü"]},
        {"return_value": 0, "args": [False, None, ""], "kwargs": {"k": 0.0}},
        {"return_value": "", "id": 'x"y\\z', "task": "tâches.ajouter"},
        {"id": "été²", "task": "", "enqueued_at": None, "last_attempted_at": None},
        {"status": "FAILED", "errors": []},
        {
            "status": "FAILED",
            "errors": [
                {"exception_class_path": "a.B", "traceback": "", "message": "1"},
                {"exception_class_path": 'x.Oops"', "traceback": "", "message": "é\n"},
            ],
        },
    ],
)
def test_arq_result_writes_what_one_json_dumps_of_arqs_fields_writes(
    changes: dict[str, Any],
) -> None:
    record: dict[str, Any] = {
        "id": "0123456789abcdef0123456789abcdef",
        "status": "SUCCESSFUL",
        "task": "tests.tasks.add",
        "backend": "default",
        "args": [1, 2],
        "kwargs": {"k": "v"},
        "enqueued_at": "2026-12-02T13:00:00.123456+00:00",
        "started_at": "2026-12-02T13:00:00.223456+00:00",
        "finished_at": "2026-12-02T13:00:00.323456+00:00",
        "last_attempted_at": "2026-12-02T13:00:00.223456+00:00",
        "errors": [],
        "worker_ids": ["w"],
        "return_value": 3,
        **changes,
    }
    for attempt, queue_key in ((1, "arq:queue"), (12, 'arq:queue:ö"')):
        raw = arq_result(record, attempt, queue_key)  # type: ignore[arg-type]
        assert raw == _arq_reference(record, attempt, queue_key)
        assert raw == arq_result(record, attempt, queue_key)  # type: ignore[arg-type]
