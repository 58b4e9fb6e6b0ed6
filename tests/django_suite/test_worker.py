"""Django's own Tasks tests on JobsBackend, each job run by a real worker process.

The same classes as test_drain.py; here the RunningBackend stand-in enqueues and
waits for the result from one `manage.py jobs_worker` subprocess, started for
this module (see conftest.py).
"""

from __future__ import annotations

from tests.django_suite.suite import load_classes

MODE = "worker"

globals().update(load_classes())
