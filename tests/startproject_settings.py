"""What a new user's worker runs with: `django-admin startproject`'s DEBUG on and
no LOGGING of its own (Django's default logging), the test suite's TASKS."""

from __future__ import annotations

from settings.test import *  # noqa: F403

DEBUG = True
LOGGING: dict[str, object] = {}  # Django's global default: only DEFAULT_LOGGING
