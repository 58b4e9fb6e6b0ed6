"""JSON, and only JSON, for everything that crosses Redis.

Jobs keep arq's layout (`{"t", "f", "a", "k", "et"}` under `arq:job:<id>`) so
arq's tools can read them, but the encoding is strict JSON: nothing from Redis is
ever unpickled, and anything that would not survive a JSON round trip unchanged
(a datetime, a set, a tuple key, NaN) is refused when the job is enqueued.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.exceptions import SerializationError

PICKLE_MARKER = 0x80  # first byte of every pickle of protocol 2 or later
# Milliseconds since the epoch that a datetime can hold (up to 9999-12-31).
MAX_MS = 253_402_300_799_999


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf, which JSON cannot carry
        raise ValueError(f"{text[:40]} is out of a float's range")
    return value


_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# _encoder's C encoder, made once: JSONEncoder.encode() makes one per call, with
# a dict to catch circular references (a third of encoding a job's arq record).
# Without that dict a circular value (arq's enqueue_job hands dumps() users'
# values unchecked) ends at the depth limit, a SerializationError as before.
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)  # None: no _json
_chunks: Callable[[Any, int], Sequence[str]] = (
    _make_c_encoder(
        *(None, _encoder.default, json.encoder.encode_basestring, None, ":", ","),
        *(False, False, False),  # sort_keys, skipkeys, allow_nan
    )
    if _make_c_encoder is not None
    else lambda value, _: (_encoder.encode(value),)
)
# Strict both ways: what we write is what we read (no NaN, no infinities).
_decode = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite).decode


def check_json(value: Any, where: str) -> None:
    """Raise SerializationError naming the first part of `value` that is not JSON."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{where} is {value!r}, which JSON cannot carry.")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"{where} has the key {key!r} ({type(key).__name__}); "
                    "JSON object keys must be strings."
                )
            check_json(item, f"{where}[{key!r}]")
        return
    # "Unsupported type" is Django's wording (django.utils.json.normalize_json),
    # which its tests and users' code may look for.
    raise SerializationError(
        f"Unsupported type: {where} is a {type(value).__module__}."
        f"{type(value).__qualname__}, which is not JSON-serializable. "
        "Pass JSON types (str, int, float, bool, "
        "None, list, dict), e.g. an ISO string for a datetime or a primary key "
        "for a model instance."
    )


def dumps(value: Any) -> bytes:
    """Encode `value` as compact UTF-8 JSON; SerializationError if it is not JSON
    (callers that build values from input check it first, for a better message)."""
    try:
        return "".join(_chunks(value, 0)).encode()
    except (ValueError, TypeError, RecursionError) as e:
        raise SerializationError(f"cannot encode as JSON: {e}") from None


def loads(data: bytes | str) -> Any:
    """Decode JSON from Redis, refusing pickles and anything else that is not JSON."""
    if isinstance(data, bytes) and data[:1] == bytes([PICKLE_MARKER]):
        raise SerializationError("refused a pickled payload: only JSON is accepted")
    try:
        return _decode(data.decode() if isinstance(data, bytes) else data)
    except (UnicodeDecodeError, ValueError) as e:
        raise SerializationError(f"refused a payload that is not JSON: {e}") from None
    except RecursionError:  # the C decoder's depth limit: deep nesting
        raise SerializationError(
            "refused a payload that is not JSON: nested too deep"
        ) from None


# Not frozen: a frozen dataclass sets each field through object.__setattr__
# (22.9k instructions to make one, 8.4k unfrozen), and every enqueue and every
# claimed job makes one. Nothing changes a payload once made.
@dataclass(slots=True, kw_only=True)
class JobPayload:
    """One job as stored under `arq:job:<id>` (arq's keys plus ours)."""

    task_path: str  # "f": the Task's module path
    args: list[Any]  # "a"
    kwargs: dict[str, Any]  # "k"
    enqueued_ms: int  # "et"
    queue_name: str  # "q"
    backend: str  # "b"
    run_after_ms: int | None = None  # "r"
    meta: dict[str, Any] | None = None  # "m": e.g. the schedule that made the job
    priority: int = 0  # "p", absent when 0

    def encode(self) -> bytes:
        data: dict[str, Any] = {
            "t": None,
            "f": self.task_path,
            "a": self.args,
            "k": self.kwargs,
            "et": self.enqueued_ms,
            "q": self.queue_name,
            "b": self.backend,
        }
        if self.run_after_ms is not None:
            data["r"] = self.run_after_ms
        if self.meta:
            data["m"] = self.meta
        if self.priority:
            data["p"] = self.priority
        return dumps(data)

    @classmethod
    def decode(cls, raw: bytes) -> JobPayload:
        """Parse a job from Redis, raising SerializationError on anything malformed."""
        data = loads(raw)
        if not isinstance(data, dict):
            raise SerializationError(
                f"refused a malformed job: a JSON {type(data).__name__}, not an object"
            )
        if not ("f" in data and "a" in data and "k" in data and "et" in data):
            missing = [name for name in ("f", "a", "k", "et") if name not in data]
            raise SerializationError(
                f"refused a malformed job: missing {', '.join(missing)}"
            )
        payload = cls(
            task_path=data["f"],
            args=data["a"],
            kwargs=data["k"],
            enqueued_ms=data["et"],
            queue_name=data.get("q", "default"),
            backend=data.get("b", "default"),
            run_after_ms=data.get("r"),
            meta=data.get("m"),
            priority=data.get("p", 0),
        )
        if not payload.well_formed():
            wrong = "; ".join(payload.wrong_fields())
            raise SerializationError(f"refused a malformed job: {wrong}")
        return payload

    def well_formed(self) -> bool:
        """Whether wrong_fields() would find nothing: the hot path's one check."""
        r, m, p = self.run_after_ms, self.meta, self.priority
        return (
            type(self.task_path) is str
            and self.task_path != ""
            and type(self.args) is list
            and type(self.kwargs) is dict
            and type(self.enqueued_ms) is int
            and 0 <= self.enqueued_ms <= MAX_MS
            and type(self.queue_name) is str
            and self.queue_name != ""
            and type(self.backend) is str
            and (r is None or (type(r) is int and 0 <= r <= MAX_MS))
            and (m is None or type(m) is dict)
            and type(p) is int
            and -100 <= p <= 100
        )

    def wrong_fields(self) -> list[str]:
        """What is mistyped or out of range, field by field (empty: nothing)."""
        checks = [
            ("f", self.task_path, str, False),
            ("a", self.args, list, False),
            ("k", self.kwargs, dict, False),
            ("et", self.enqueued_ms, int, False),
            ("q", self.queue_name, str, False),
            ("b", self.backend, str, False),
            ("r", self.run_after_ms, int, True),
            ("m", self.meta, dict, True),
            ("p", self.priority, int, False),
        ]
        wrong = [
            f'"{name}" is {_short(value)}, not {kind.__name__}'
            for name, value, kind, optional in checks
            if not (type(value) is kind or (optional and value is None))
        ]
        for name, ms in (("et", self.enqueued_ms), ("r", self.run_after_ms)):
            if type(ms) is int and not 0 <= ms <= MAX_MS:
                wrong.append(f'"{name}" is {_short(ms)}, out of a date\'s range')
        if type(self.priority) is int and not -100 <= self.priority <= 100:
            wrong.append(f'"p" is {_short(self.priority)}, out of -100..100')
        if type(self.task_path) is str and not self.task_path:
            wrong.append('"f" is empty')
        if type(self.queue_name) is str and not self.queue_name:
            wrong.append('"q" is empty')
        return wrong


def _short(value: Any) -> str:
    return reprlib.repr(value)  # bounded in length and depth


class CacheSerializer:
    """A JSON serializer for Django's RedisCache (`OPTIONS["serializer"]`).

    Django's default RedisSerializer pickles; results come back from Redis, so
    they must not be unpickled. Integers stay raw so `incr()` keeps working.
    """

    def dumps(self, obj: Any) -> bytes | int:
        if type(obj) is int:
            return obj
        check_json(obj, "the cached value")
        return dumps(obj)

    def loads(self, data: bytes) -> Any:
        try:
            return int(data)
        except ValueError:
            return loads(data)
