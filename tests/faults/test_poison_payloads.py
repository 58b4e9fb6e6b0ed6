"""No payload can kill a worker or make it loop: planted jobs end FAILED at once.

A seeded generator plants malformed jobs (fields missing, mistyped or out of
range, huge, deeply nested, not JSON, of another backend...) straight into
Redis, past enqueue's checks, beside normal jobs; one real worker process
takes them in mixed batches. Every planted job must end FAILED with an error
on its first claim and be removed, every normal job must finish, and the
worker must stay up.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.tasks import default_task_backend

from jobs import PayloadTooLarge
from jobs.redis.keys import queue_key
from tests import tasks
from tests.servers import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

SEED = 20261202
QUEUE = queue_key("default")
MAX_PAYLOAD = 64 * 1024  # bytes, the worker's (and this test's) limit
BASE: dict[str, Any] = {
    "t": None,
    "f": "tests.tasks.add",
    "a": [1, 2],
    "k": {},
    "et": 1_700_000_000_000,
    "q": "default",
    "b": "default",
}
FIELDS = ["f", "a", "k", "et", "q", "b", "r", "m"]
ODD_VALUES: list[Any] = [
    None,
    True,
    1.5,
    -1,
    0,
    "",
    "x",
    [],
    {},
    [1, [2]],
    {"a": 1},
    10**20,
    -(10**20),
    2**63,
    "no-such-queue",
    "os.system",
]


def _raw(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def fixed_cases() -> Iterator[tuple[str, bytes]]:
    """The payloads a chaos run found, and their neighbours."""
    deep = b"[" * 200_000 + b"]" * 200_000
    yield "deep-nesting", deep
    yield "deep-args", _raw(BASE)[:-1] + b',"a":' + deep + b"}"
    nested = [1]
    for _ in range(990):  # decodes, but is too deep to encode again
        nested = [nested]
    yield "nested-990", _raw({**BASE, "f": "tests.tasks.record", "a": [nested]})
    yield "unknown-queue", _raw({**BASE, "q": "no-such-queue"})
    yield "run-after-huge", _raw({**BASE, "r": 10**20})
    yield "enqueued-huge", _raw({**BASE, "et": 10**20})
    yield "enqueued-negative", _raw({**BASE, "et": -(10**18)})
    for name, text in [("nan", "NaN"), ("inf", "-Infinity"), ("e400", "1e400")]:
        yield f"args-{name}", _raw(BASE).replace(b"[1, 2]", f"[{text}, 1]".encode())
    yield "big-int", _raw(BASE).replace(b"[1, 2]", b"[" + b"9" * 5000 + b", 1]")
    yield "huge", _raw({**BASE, "f": "tests.tasks.sized", "a": ["x" * 2_000_000]})
    yield (
        "just-over",
        _raw({**BASE, "f": "tests.tasks.sized", "a": ["x" * MAX_PAYLOAD]}),
    )
    yield "other-backend", _raw({**BASE, "b": "nope"})
    yield "unregistered", _raw({**BASE, "f": "os.system", "a": ["id"]})
    yield "pickle", b"\x80\x04\x95" + b"x" * 20
    yield "not-utf8", b'{"f": "\xff\xfe"}'
    yield "empty", b""
    yield "garbage", b"\x00\x01garbage"
    for name, value in [
        ("list", [1]),
        ("number", 3),
        ("string", "job"),
        ("null", None),
    ]:
        yield f"json-{name}", json.dumps(value).encode()
    yield "bad-arguments", _raw({**BASE, "a": [1, 2, 3]})  # the task's TypeError
    yield "bad-kwargs", _raw({**BASE, "a": [], "k": {"nope": 1}})


def generated_cases(rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    """Valid jobs with one to three fields dropped, retyped or out of range."""
    for n in range(count):
        job = dict(BASE)
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(FIELDS)
            if rng.random() < 0.3:
                job.pop(name, None)
            else:
                job[name] = rng.choice(ODD_VALUES)
        if job != BASE:
            yield f"gen-{n}", _raw(job)


def plant(client, job_id: str | bytes, raw: bytes) -> None:
    raw_id = job_id if isinstance(job_id, bytes) else job_id.encode()
    client.set(b"arq:job:" + raw_id, raw)
    client.zadd(QUEUE, {job_id: 0})


def finished_record(job_id: str) -> dict[str, Any] | None:
    record = default_task_backend.results.get(job_id)
    if record is None or record["status"] not in ("SUCCESSFUL", "FAILED"):
        return None
    return record


def test_planted_malformed_payloads_fail_at_once_and_the_worker_goes_on(
    worker_process, r
):
    rng = random.Random(SEED)
    cases = dict(fixed_cases())
    cases.update(generated_cases(rng, 60))
    normal = []
    for n, (name, raw) in enumerate(cases.items()):
        plant(r, f"bad-{name}", raw)
        if n % 4 == 0:
            normal.append(tasks.add.enqueue(n, 1))
    r.hset("arq:job:bad-wrong-type", "f", "tests.tasks.add")  # not a string at all
    r.zadd(QUEUE, {"bad-wrong-type": 0})
    cases["wrong-type"] = b""
    plant(r, b"bad-\xff", _raw(BASE))  # an id no key or record can be named by
    too_big = tasks.blob.enqueue(2_000_000)  # a result over MAX_RESULT (1 MB)
    worker = worker_process(
        "-c", "8", JOBS_TEST_OPTIONS=json.dumps({"MAX_PAYLOAD": MAX_PAYLOAD})
    )
    started = time.monotonic()
    for result in normal:
        assert result.get(timeout=30) == int(result.args[0]) + 1
    ids = [f"bad-{name}" for name in cases]
    wait_until(
        lambda: all(finished_record(i) for i in ids), timeout=30, what="every bad job"
    )
    print(
        f"[measured] {len(ids)} planted payloads and {len(normal)} jobs all ended "
        f"in {time.monotonic() - started:.1f} s"
    )
    for job_id in ids:
        record = finished_record(job_id)
        assert record is not None
        if record["status"] == "SUCCESSFUL":  # a mutation that is still a valid job
            assert job_id.startswith("bad-gen-"), job_id
            assert record["return_value"] == 3, job_id
            continue
        assert record["errors"][-1]["message"], job_id
        assert len(record["worker_ids"]) == 1, (job_id, record["worker_ids"])
        assert r.exists(f"arq:job:{job_id}", f"arq:in-progress:{job_id}") == 0
    with pytest.raises(PayloadTooLarge, match=r"over MAX_RESULT \(1048576\)"):
        too_big.get(timeout=30)
    assert r.zcard(QUEUE) == 0  # every job ended, none left behind
    assert r.exists(b"arq:job:bad-\xff", b"arq:retry:bad-\xff") == 0
    assert worker.proc.poll() is None
    output = worker.output()
    assert "never retrieved" not in output
    assert "dropped job b'bad-\\xff': its id is not UTF-8 text" in output
    assert "Unhandled" not in output and "Exception in callback" not in output
    assert tasks.add.enqueue(40, 2).get(timeout=20) == 42
