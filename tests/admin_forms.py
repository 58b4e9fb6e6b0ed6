"""The Schedule admin's add/change form, as a browser posts it."""

from __future__ import annotations


def schedule_form(**changes: str) -> dict[str, str]:
    """An interval schedule of tests.tasks.counted every 20 s, with `changes`."""
    form = {
        "name": "from-admin",
        "task": "tests.tasks.counted",
        "args": '["admin"]',
        "kwargs": "{}",
        "queue_name": "",
        "enabled": "on",
        "description": "",
        "cron": "",
        "interval": "00:00:20",
        "clocked_time_0": "",
        "clocked_time_1": "",
        "timezone": "UTC",
        "start_time_0": "",
        "start_time_1": "",
        "expires_0": "",
        "expires_1": "",
        "overlap": "allow",
        "missed": "skip",
        "grace": "",
    }
    return {**form, **changes}
