"""Django's own tests of the Tasks framework, run against JobsBackend.

test_drain.py and test_worker.py hold Django's TestCase classes (fetched and
adapted by source.py); MODE in each says who runs RunningBackend's jobs
(backends.py). expectations.py lists the tests that cannot apply (skipped, with
the reason) and those failing on a known defect (strict xfail, naming the
defect). test_harness.py tests this harness itself.

    ./scripts/test tests/django_suite        # this tier alone
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.django_suite import backends, expectations, source
from tests.django_suite.suite import tasks_app
from tests.redis_fixtures import *  # noqa: F403
from tests.servers import RedisServer, WorkerProcess, wait_until, worker_env

ANCHORS = {"test_drain.py", "test_worker.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent != Path(__file__).parent or item.path.name not in ANCHORS:
            continue
        cls = getattr(item, "cls", None)
        if cls is None:
            continue
        mode = item.module.MODE  # type: ignore[attr-defined]
        marker = expectations.marker(f"{cls.__name__}.{item.name}", mode)
        if marker is not None:
            item.add_marker(marker)
        # Django runs async tests in another thread, where a failing subTest
        # would make the default (signal) timeout fail to cancel its alarm.
        item.add_marker(pytest.mark.timeout(method="thread"))


IN_CALL = pytest.StashKey[bool]()
SUBTEST_XFAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    item.stash[IN_CALL] = True
    try:
        return (yield)
    finally:
        item.stash[IN_CALL] = False


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Judge a strict-xfail test with subTests by its subtests, as a whole.

    pytest reports each unittest subTest through this hook while the test runs,
    applying the test's xfail mark to each: a failing subtest is xfailed, a
    passing one XPASS(strict), and the test itself, whose body raised nothing,
    XPASS(strict) too. Here a passing subtest just passes, and the test is
    xfailed if any of its subtests was.
    """
    report = yield
    xfail = item.get_closest_marker("xfail")
    if call.when != "call" or xfail is None or not xfail.kwargs.get("strict"):
        return report
    xpassed = report.failed and str(report.longrepr).startswith("[XPASS(strict)]")
    if item.stash.get(IN_CALL, False):  # a subtest
        if hasattr(report, "wasxfail"):
            item.stash[SUBTEST_XFAILED] = True
        elif xpassed:
            report.outcome = "passed"
            report.longrepr = None
    elif xpassed and item.stash.get(SUBTEST_XFAILED, False):
        report.outcome = "skipped"
        report.longrepr = None
        report.wasxfail = xfail.kwargs["reason"]
    return report


@pytest.fixture(scope="package", autouse=True)
def _tasks_app() -> Iterator[None]:
    with tasks_app():
        yield


class SuiteWorker:
    """One `manage.py jobs_worker` for a module's tests, restarted if it died."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.process: WorkerProcess | None = None
        self.started = 0

    def death(self) -> str | None:
        """Why the worker is gone (exit code and log tail), None while it runs."""
        if self.process is None or self.process.proc.poll() is None:
            return None
        tail = "\n".join(self.process.output().splitlines()[-20:])
        return f"the worker exited ({self.process.proc.returncode}):\n{tail}"

    def ensure_running(self) -> None:
        if self.process is not None and self.death() is None:
            return
        if self.process is not None:
            self.process.stop()
        options = {"IMPORTS": ["tests.tasks", f"{source.PACKAGE}.tasks"]}
        env = worker_env(JOBS_TEST_OPTIONS=json.dumps(options))
        # Django's `tasks` package; manage.py puts the project on sys.path.
        paths = [str(source.import_root()), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self.started += 1
        log = self.log_dir / f"worker-{self.started}.log"
        args = ["-l", "info", "--queues", "default", "--no-schedules"]
        self.process = WorkerProcess(args, env, log)
        process = self.process
        wait_until(
            lambda: "consuming" in process.output() or process.proc.poll() is not None,
            timeout=30,  # as every worker start in the suite: 11.6 s seen under load
            what="the worker to start",
        )
        if (reason := self.death()) is not None:
            raise RuntimeError(reason)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture(scope="module")
def suite_worker(
    test_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SuiteWorker]:
    worker = SuiteWorker(tmp_path_factory.mktemp("django-suite-worker"))
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def _runner(request: pytest.FixtureRequest) -> Iterator[None]:
    """Who runs RunningBackend's jobs in this test: see MODE in its module."""
    mode = getattr(request.module, "MODE", None)
    runner: backends.Runner
    if mode == "worker":
        worker: SuiteWorker = request.getfixturevalue("suite_worker")
        worker.ensure_running()
        runner = backends.Worker(worker.death)
    else:
        runner = backends.Drain()
    with backends.running_with(runner):
        yield
