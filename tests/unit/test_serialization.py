from __future__ import annotations

import json
import math
import pickle
from datetime import datetime
from decimal import Decimal

import pytest

from jobs import SerializationError
from jobs.serialization import CacheSerializer, JobPayload, check_json, dumps, loads


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"when": datetime(2026, 1, 1)}, "args['when'] is a datetime.datetime"),
        ([1, {2, 3}], "args[1] is a builtins.set"),
        ({1: "x"}, "has the key 1 (int)"),
        ([math.nan], "args[0] is nan"),
        ([math.inf], "args[0] is inf"),
        ([Decimal("1.5")], "args[0] is a decimal.Decimal"),
        ([b"bytes"], "args[0] is a builtins.bytes"),
        ([[[object()]]], "args[0][0][0] is a builtins.object"),
    ],
)
def test_check_json_names_the_offending_part(value, fragment):
    with pytest.raises(SerializationError) as excinfo:
        check_json(value, "args")
    assert fragment in str(excinfo.value)
    assert isinstance(excinfo.value, TypeError)  # what Django code expects


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -(2**70), 1.5, "héllo", [1, [2]], {"a": {"b": [None]}}, (1, 2)],
)
def test_json_values_pass_and_round_trip(value):
    check_json(value, "args")
    expected = list(value) if isinstance(value, tuple) else value
    assert loads(dumps(value)) == expected


def test_loads_refuses_pickles_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with pytest.raises(SerializationError, match="pickled"):
        loads(pickle.dumps(Evil()))
    assert not marker.exists()


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{not json", b"", "{'single': 1}"])
def test_loads_refuses_garbage(raw):
    with pytest.raises(SerializationError, match="not JSON"):
        loads(raw)


def test_job_payload_round_trip_keeps_arq_layout():
    payload = JobPayload(
        task_path="tests.tasks.add",
        args=[1, 2],
        kwargs={"z": 3},
        enqueued_ms=1000,
        queue_name="default",
        backend="default",
        run_after_ms=2000,
        meta={"schedule": 4},
    )
    raw = payload.encode()
    assert loads(raw)["f"] == "tests.tasks.add"  # arq's keys: f, a, k, et, t
    assert set(loads(raw)) >= {"t", "f", "a", "k", "et"}
    assert JobPayload.decode(raw) == payload


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"f": "x"}',
        b'{"f": 1, "a": [], "k": {}, "et": 0}',
        b'{"f": "x", "a": {}, "k": {}, "et": 0}',
        b'{"f": "x", "a": [], "k": {}, "et": true}',
        b'{"f": "x", "a": [], "k": {}, "et": 100000000000000000000}',
        b'{"f": "x", "a": [], "k": {}, "et": 0, "r": -1}',
        b'{"f": "x", "a": [], "k": {}, "et": 0, "q": 5}',
        b'{"f": "x", "a": [], "k": {}, "et": 0, "b": null}',
        b'{"f": "x", "a": [], "k": {}, "et": 0, "m": []}',
        b'{"f": "", "a": [], "k": {}, "et": 0}',
        b'{"f": "x", "a": [], "k": {}, "et": 0, "p": 1000}',
    ],
)
def test_job_payload_refuses_malformed_jobs(raw):
    # Each refusal names what is wrong (well_formed() and wrong_fields() agree).
    with pytest.raises(SerializationError, match=r"malformed job: .{5,}"):
        JobPayload.decode(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[NaN]", "NaN is not JSON"),
        (b"[-Infinity]", "Infinity is not JSON"),
        (b"[1e400]", "out of a float's range"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    ],
)
def test_loads_refuses_what_json_cannot_carry(raw, message):
    with pytest.raises(SerializationError, match=message):
        loads(raw)


def test_dumps_refuses_what_json_cannot_carry():
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SerializationError, match="cannot encode"):
        dumps(deep)
    with pytest.raises(SerializationError, match="cannot encode"):
        dumps(float("nan"))
    circular: list[object] = []
    circular.append({"a": circular})
    with pytest.raises(SerializationError, match="cannot encode"):
        dumps(circular)


def test_cache_serializer_keeps_ints_raw_for_incr():
    serializer = CacheSerializer()
    assert serializer.dumps(5) == 5
    assert serializer.loads(b"5") == 5
    assert serializer.loads(serializer.dumps({"a": [1]})) == {"a": [1]}
    with pytest.raises(SerializationError):
        serializer.dumps({"a": object()})
    with pytest.raises(SerializationError):
        serializer.loads(pickle.dumps({"a": 1}))


@pytest.mark.parametrize(
    "value",
    [
        {"t": 1, "f": "tasks.add", "a": [1, 2.5, -0.0, 1e300], "k": {"é": 'ü\n"\\'}},
        [None, True, False, 2**70, -(2**63), "", "\u2028\x00", {"": []}],
        "plain",
        3,
        1.0000000000000002,
        {"nested": {"deep": [[[{"a": None}]]]}},
    ],
)
def test_dumps_writes_what_json_dumps_writes(value):
    """The encoder made once writes the bytes json's own encoder writes."""
    expected = json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()
    assert dumps(value) == expected


def test_dumps_refuses_other_types_naming_them():
    with pytest.raises(SerializationError, match="Decimal is not JSON serializable"):
        dumps({"a": Decimal("1")})
    with pytest.raises(SerializationError, match="not JSON compliant"):
        dumps([float("inf")])
