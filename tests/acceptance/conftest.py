"""This tier runs against a real Redis: its fixtures, autouse ones included."""

from __future__ import annotations

from tests.redis_fixtures import *  # noqa: F403
