"""Django's own Tasks tests on JobsBackend, each job run by the project's drain.

The classes are Django's (tests/tasks of the installed Django's sdist, see
source.py); the RunningBackend stand-in runs each job with jobs.testing.drain()
in this process as soon as it is enqueued.
"""

from __future__ import annotations

from tests.django_suite.suite import load_classes

MODE = "drain"

globals().update(load_classes())
