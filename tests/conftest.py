"""Real Redis (a redis-server per test session), real database, real workers.

The database is SQLite, or PostgreSQL with JOBS_TEST_DATABASE=postgres (a cluster
of the session's own, see settings/test.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.db import connections as db_connections
from django.test import override_settings
from django.test.signals import update_connections_time_zone

from jobs.redis import connections
from settings import database

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server subprocess on a free loopback port, restartable."""

    def __init__(self, port: int, extra: list[str] | None = None) -> None:
        self.port = port
        self.extra = extra or []
        self.dir = tempfile.mkdtemp(prefix="jobs-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.exit(
                "redis-server is not installed: apt-get install redis-server", 2
            )
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    pytest.exit(f"redis-server did not answer on port {self.port}", 2)
                time.sleep(0.02)
        client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    url = os.environ.get("JOBS_TEST_REDIS_URL")
    if url:  # e.g. the compose file's Redis
        server = RedisServer(int(url.rsplit(":", 1)[1].split("/")[0]))
        yield server
        return
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


class PostgresCluster:
    """A PostgreSQL cluster in a temporary directory (scripts/postgres), on a free
    loopback port, durability off; run as the `postgres` user when we are root."""

    script = ROOT / "scripts" / "postgres"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="jobs-postgres-")

    def start(self) -> None:
        for _ in range(3):  # another process may take the free port first
            args = ["start", self.dir, str(self.port), "--fast"]
            done = subprocess.run([self.script, *args], capture_output=True, text=True)
            if done.returncode == 0:
                return
            self.port = free_port()
        self.stop()
        pytest.exit(f"PostgreSQL did not start:\n{done.stdout}{done.stderr}", 2)

    def stop(self) -> None:
        subprocess.run([self.script, "stop", self.dir], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


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


def database_env(db: dict[str, Any]) -> dict[str, str]:
    """How a worker subprocess (settings.test) finds the test database."""
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return {"DATABASE_PATH": str(db["NAME"])}
    return {"JOBS_TEST_DATABASE": database.url(db)}


def settings_for(url: str) -> dict[str, object]:
    from django.conf import settings

    tasks = {alias: dict(params) for alias, params in settings.TASKS.items()}
    tasks["default"]["OPTIONS"] = {**tasks["default"]["OPTIONS"], "REDIS_URL": url}
    caches = {alias: dict(params) for alias, params in settings.CACHES.items()}
    caches["default"]["LOCATION"] = url
    return {"TASKS": tasks, "CACHES": caches}


@pytest.fixture(scope="session", autouse=True)
def _point_at_test_redis(redis_server: RedisServer) -> Iterator[None]:
    os.environ["REDIS_URL"] = redis_server.url  # for worker subprocesses
    with override_settings(**settings_for(redis_server.url)):
        yield


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(autouse=True)
def _flush(redis_server: RedisServer) -> Iterator[None]:
    client = redis_server.client()
    client.flushall()
    client.close()
    from tests import tasks

    tasks.seen.clear()
    tasks.sync_barrier.reset()
    yield
    connections.close_all()


@pytest.fixture(autouse=True)
async def _close_async_clients() -> Iterator[None]:  # type: ignore[misc]
    yield
    await connections.aclose_all()
    await sync_to_async(_reset_database_connections)()


def _reset_database_connections() -> None:
    """Close this thread's connections and forget their time zones.

    sync_to_async's one thread outlives the test, and Django resets the time
    zone of the overriding thread's connections only: this one's would keep
    the old one (PostgreSQL's session time zone) in a test that overrides
    USE_TZ or TIME_ZONE.
    """
    update_connections_time_zone(setting="USE_TZ")
    db_connections.close_all()


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


def worker_env(**extra: str) -> dict[str, str]:
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="settings.test",
        PYTHONUNBUFFERED="1",
        **database_env(settings.DATABASES["default"]),
        **extra,
    )
    return env


class WorkerProcess:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "jobs_worker", *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `manage.py jobs_worker` subprocesses; stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(["-l", "info", *args], worker_env(**env), log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_until(
    predicate: Callable[[], object], timeout: float = 15, what: str = ""
) -> None:
    """Poll `predicate` until it is true (for states in other processes)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what or predicate}"
            )
        time.sleep(0.02)
