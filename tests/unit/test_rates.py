"""Rate limit strings (see jobs.task.rate_interval)."""

from __future__ import annotations

import pytest
from django.tasks.exceptions import InvalidTask

from jobs.task import rate_interval


def test_rates_are_parsed_or_refused():
    assert rate_interval("100/m") == 600
    assert rate_interval("5/s") == 200
    assert rate_interval(" 2.5 / h ") == 1_440_000
    for bad in ("100", "0/s", "10/w", "-1/s", "ten/s"):
        with pytest.raises(InvalidTask, match="is not a rate"):
            rate_interval(bad)
