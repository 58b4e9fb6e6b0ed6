"""Shared by every tier. The Redis fixtures here start nothing until a test asks
for them: the tiers that use Redis (integration, acceptance, faults, browser,
django_suite) ask in their conftest (tests/redis_fixtures.py, autouse); the unit
tier never does and runs with no server at all.

The database is SQLite, or PostgreSQL with JOBS_TEST_DATABASE=postgres (a
cluster of the session's own, see settings/test.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from asgiref.sync import SyncToAsync
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from django.test import override_settings

from tests.servers import (
    ARQ_WORKER,
    JOBS_WORKER,
    PostgresCluster,
    RedisServer,
    WorkerProcess,
    free_port,
    settings_for,
    worker_env,
)


def _forget_time_zone() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close()
        connection.__dict__.pop("timezone", None)  # Django's cached_properties
        connection.__dict__.pop("timezone_name", None)


@receiver(setting_changed)
def _time_zone_changed_in_the_sync_thread(*, setting: str, **kwargs: Any) -> None:
    """Django resets the time zone of the connections of the thread that changes
    TIME_ZONE or USE_TZ; async tests use the ORM through asgiref's one sync
    thread, whose connections outlive the test and kept the zone of the test
    that first used them (on PostgreSQL, a naive last_run_at read back an hour
    off after a USE_TZ=False test in another zone). Queued there, so before
    anything that thread runs next."""
    if setting in {"TIME_ZONE", "USE_TZ"}:
        SyncToAsync.single_thread_executor.submit(_forget_time_zone)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session, on a free port (or JOBS_TEST_REDIS_URL)."""
    url = os.environ.get("JOBS_TEST_REDIS_URL")
    if url:  # e.g. the compose file's Redis
        yield RedisServer(int(url.rsplit(":", 1)[1].split("/")[0]))
        return
    server = RedisServer(free_port())
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def test_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """TASKS and CACHES pointed at the session's Redis, for the rest of it."""
    os.environ["REDIS_URL"] = redis_server.url  # for worker subprocesses
    with override_settings(**settings_for(redis_server.url)):
        yield redis_server


@pytest.fixture
def redis_url(test_redis: RedisServer) -> str:
    return test_redis.url


@pytest.fixture
def r(test_redis: RedisServer) -> Iterator[redis.Redis]:
    client = test_redis.client()
    yield client
    client.close()


@pytest.fixture
def own_redis() -> Iterator[Callable[..., RedisServer]]:
    """Start dedicated redis-servers (AOF, memory limits...) for one test."""
    servers: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        server = RedisServer(free_port(), list(extra))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.remove(signal.SIGKILL)


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `manage.py jobs_worker` subprocesses; stopped at teardown."""
    yield from _processes(tmp_path, "worker", JOBS_WORKER, ["-l", "info"])


@pytest.fixture
def arq_process(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `arq jobs.arq.WorkerSettings` subprocesses (arq's own CLI)."""
    yield from _processes(tmp_path, "arq", ARQ_WORKER, [])


def _processes(
    tmp_path: Path, name: str, command: list[str], first: list[str]
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        log = tmp_path / f"{name}-{len(started)}.log"
        worker = WorkerProcess([*first, *args], worker_env(**env), log, command)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


class LoopClock:
    """The running event loop's clock, stopped: it moves only by advance(), so
    the loop's timers fire when the test says, however late the machine runs it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        """Move the clock on and let the timers now due run.

        Twice round the loop: the first turn queues the due timers behind this
        task, the second lets them run before it resumes.
        """
        self.now += seconds
        await asyncio.sleep(0)
        await asyncio.sleep(0)


@pytest.fixture
async def loop_clock(monkeypatch: pytest.MonkeyPatch) -> LoopClock:
    """Stop the test's event loop clock (call_at, call_later, sleep) for the
    test; for timing logic asserted exactly, not by sleeping on a busy machine."""
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop.time())
    monkeypatch.setattr(loop, "time", clock.time)
    return clock


def pytest_report_header() -> str:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return f"database: {engine} (JOBS_TEST_DATABASE={settings.TEST_DATABASE})"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
) -> Iterator[None]:
    """Start the session's PostgreSQL cluster (JOBS_TEST_DATABASE=postgres) before
    pytest-django creates the test database in it; stop it after the drop."""
    from django.conf import settings

    if settings.TEST_DATABASE != "postgres":
        yield
        return
    cluster = PostgresCluster()
    cluster.start()
    settings.DATABASES["default"].update(HOST="127.0.0.1", PORT=str(cluster.port))
    try:
        yield
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's, and on PostgreSQL, before it drops the test database,
    close what other threads left open (workers run the ORM in thread pools):
    PostgreSQL refuses to drop a database that has sessions."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()
