"""Schedule rows validated as the admin, `manage.py check` and the worker do
(jobs.schedules.entries.row_errors), without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobs.enqueue import call_problem
from jobs.schedules.entries import row_errors

FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "r",
        "task": "tests.tasks.add",
        "args": [1, 2],
        "kwargs": {},
        "queue_name": "",
        "cron": "*/5 * * * *",
        "interval": None,
        "clocked_time": None,
        "timezone": "Europe/Berlin",
        "start_time": None,
        "expires": None,
        "overlap": "allow",
        "missed": "skip",
        "grace": None,
        "last_run_at": None,
        "enabled": True,
        "created_at": None,
    }
    return {**base, **changes}


def test_a_valid_row_of_each_kind_has_no_errors():
    assert row_errors(row()) == {}
    assert row_errors(row(cron="", interval=timedelta(seconds=20))) == {}
    assert row_errors(row(cron="", clocked_time=FUTURE)) == {}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron": "61 * * * *"}, "cron", "out of range 0-59"),
        ({"cron": "* * * *"}, "cron", "has 4 fields"),
        ({"cron": "", "interval": timedelta(milliseconds=10)}, "interval", "1 second"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
        ({"task": "tests.tasks.nope"}, "task", "not a registered task"),
        ({"queue_name": "elsewhere"}, "queue_name", "is not one of"),
        ({"args": {"x": 1}}, "args", "JSON list"),
        ({"kwargs": [1]}, "kwargs", "JSON object"),
        ({"args": [1]}, "args", "missing a required argument: 'y'"),
        ({"args": [1, 2, 3]}, "args", "too many positional arguments"),
        ({"kwargs": {"z": 2}}, "args", "unexpected keyword argument 'z'"),
        ({"missed": "grace"}, "grace", "need a grace period"),
        ({"overlap": "queue"}, "grace", "overlap must be one of"),
        (
            {"cron": "", "clocked_time": datetime(2000, 1, 1, tzinfo=UTC)},
            "clocked_time",
            "in the past",
        ),
        (
            {"start_time": FUTURE, "expires": FUTURE - timedelta(days=1)},
            "expires",
            "after the start",
        ),
    ],
)
def test_each_problem_is_reported_on_its_field(changes, field, message):
    errors = row_errors(row(**changes))
    assert field in errors, errors
    assert any(message in text for text in errors[field]), errors


def test_one_kind_exactly_is_the_model_constraints_to_report():
    # Schedule's CheckConstraint reports it once, as a form-wide error.
    assert row_errors(row(cron="")) == {}
    assert row_errors(row(interval=timedelta(seconds=5))) == {}


def test_a_clocked_time_in_the_past_is_fine_once_it_has_run():
    past = datetime(2000, 1, 1, tzinfo=UTC)
    assert row_errors(row(cron="", clocked_time=past, last_run_at=past)) == {}


def test_argument_checks_wait_for_valid_json_shapes():
    # A kwargs error is reported once, not again as a call that cannot bind.
    errors = row_errors(row(kwargs="x=1"))
    assert list(errors) == ["kwargs"]


def test_call_problems_are_cached_by_the_call_shape():
    call_problem.cache_clear()

    def func(a, b=0):
        return None

    assert call_problem(func, False, 1, ()) == ""
    assert "too many" in call_problem(func, False, 3, ())
    assert call_problem(func, False, 1, ("b",)) == ""
    assert call_problem(func, False, 1, ()) == ""
    assert call_problem.cache_info().hits == 1
