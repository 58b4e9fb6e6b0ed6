"""This tier runs against a real Redis: its fixtures, autouse ones included."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from jobs import conf
from tests.redis_fixtures import *  # noqa: F403
from tests.servers import ROOT

SEED = Path(__file__).resolve().parents[1] / "seed_project"
MODULES = ["deploy.tasks", "testapp.tasks", "website.celery"]


@pytest.fixture
def seed() -> Iterator[dict[str, str]]:
    """The seed project importable here and in the worker's environment."""
    sys.path.insert(0, str(SEED))
    tasks = settings.TASKS["default"]
    imports = [*tasks["OPTIONS"]["IMPORTS"], *MODULES]
    backend = {**tasks, "OPTIONS": {**tasks["OPTIONS"], "IMPORTS": imports}}
    env = {
        "PYTHONPATH": os.pathsep.join([str(SEED), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "JOBS_TEST_OPTIONS": json.dumps({"IMPORTS": imports}),
    }
    try:
        with override_settings(TASKS={**settings.TASKS, "default": backend}):
            yield env
    finally:
        sys.path.remove(str(SEED))
        # website.celery's app.conf.update() ran in this process too.
        conf.CODE_SCHEDULES.clear()
