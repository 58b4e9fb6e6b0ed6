"""Real servers and processes for the tests: redis-server on a free loopback
port, `manage.py jobs_worker` subprocesses, and waiting on what they do.

Plain helpers, no fixtures: the tiers that need Redis load theirs from
tests/redis_fixtures.py.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from settings import database
from settings.base import redis_cache

ROOT = Path(__file__).resolve().parent.parent


def free_port(below: int = 65536) -> int:
    """A loopback port nothing listens on now, under `below`."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < below:
            return port


# A cluster node also listens on its port + 10000 (the cluster bus).
CLUSTER_PORT_MAX = 65536 - 10000


def installed(program: str) -> str:
    """The path of Debian's `program` (its package has the same name), or stop
    the session saying how to get it."""
    binary = shutil.which(program)
    if binary is None:
        pytest.exit(f"{program} is not installed: apt-get install {program}", 2)
    return binary


class RedisServer:
    """A redis-server subprocess on a free loopback port, restartable."""

    def __init__(self, port: int, extra: list[str] | None = None) -> None:
        self.port = port
        self.extra = extra or []
        # Made when it first starts: a RedisServer standing for a server run
        # elsewhere (JOBS_TEST_REDIS_URL) leaves nothing behind.
        self.dir: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = installed("redis-server")
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="jobs-redis-")
        self.proc = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", self.dir),
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

    def remove(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server for good and delete its data directory."""
        self.stop(sig)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


class SentinelSet:
    """A master, two replicas and three sentinels (Debian's redis-sentinel) on
    loopback: the master is declared down 2 s after it stops answering.
    `replicas` and `fast_sync=False` (Redis's own sync delay) for measurements."""

    service = "jobs"
    down_after = 2000  # ms: sentinel down-after-milliseconds

    def __init__(self, replicas: int = 2, fast_sync: bool = True) -> None:
        # Replicas sync at once (not after the default 5 s), and each replica
        # may become the master: it lets its own replicas sync at once too.
        self.fast_sync = ["--repl-diskless-sync-delay", "0"] if fast_sync else []
        self.replica_count = replicas
        self.master = RedisServer(free_port(), self.fast_sync)
        self.replicas: list[RedisServer] = []
        self.sentinels: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.dir = tempfile.mkdtemp(prefix="jobs-sentinel-")

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port, _ in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> None:
        binary = installed("redis-sentinel")
        self.master.start()
        for _ in range(self.replica_count):
            replica = RedisServer(
                free_port(),
                [*self.fast_sync, "--replicaof", "127.0.0.1", str(self.master.port)],
            )
            replica.start()
            self.replicas.append(replica)
        for i in range(3):
            port = free_port()
            conf = Path(self.dir) / f"sentinel-{i}.conf"  # sentinels rewrite it
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after}\n"
                f"sentinel failover-timeout {self.service} 10000\n"
            )
            proc = subprocess.Popen(
                [binary, str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.sentinels.append((port, proc))
        wait_until(
            self.ready, timeout=30, what="sentinels to see the replicas and each other"
        )

    def ready(self) -> bool:
        for port, _ in self.sentinels:
            try:
                state = self.sentinel(port).sentinel_master(self.service)
            except redis.RedisError:
                return False
            if (
                state["num-slaves"] < self.replica_count
                or state["num-other-sentinels"] < 2
            ):
                return False
        return True

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, decode_responses=True)

    def master_port(self) -> int:
        """The master's port as the first sentinel sees it."""
        port = self.sentinels[0][0]
        return int(
            self.sentinel(port).sentinel_get_master_addr_by_name(self.service)[1]
        )

    def stop(self) -> None:
        for _, proc in self.sentinels:
            proc.kill()
            proc.wait(5)
        for server in (self.master, *self.replicas):
            server.remove(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisClusterSet:
    """Three redis-servers as one Redis Cluster (3 masters, no replicas)."""

    def __init__(self) -> None:
        extra = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        self.nodes = [RedisServer(free_port(CLUSTER_PORT_MAX), extra) for _ in range(3)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create", "--cluster-yes"]
            + [f"127.0.0.1:{node.port}" for node in self.nodes],
            check=True,
            capture_output=True,
        )
        wait_until(self.ready, what="the cluster to cover its slots")

    def ready(self) -> bool:
        return all(
            node.client().cluster("info")["cluster_state"] == "ok"
            for node in self.nodes
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.remove(signal.SIGKILL)


def settings_for(url: str) -> dict[str, object]:
    """TASKS and CACHES of the test settings, pointed at the Redis at `url`."""
    from django.conf import settings

    tasks = {alias: dict(params) for alias, params in settings.TASKS.items()}
    tasks["default"]["OPTIONS"] = {**tasks["default"]["OPTIONS"], "REDIS_URL": url}
    caches = {alias: dict(params) for alias, params in settings.CACHES.items()}
    caches["default"] = redis_cache(url)
    return {"TASKS": tasks, "CACHES": caches}


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


def database_env(db: dict[str, Any]) -> dict[str, str]:
    """How a worker subprocess (settings.test) finds the test database."""
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return {"DATABASE_PATH": str(db["NAME"])}
    return {"JOBS_TEST_DATABASE": database.url(db)}


def worker_env(**extra: str) -> dict[str, str]:
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="settings.test",
        PYTHONUNBUFFERED="1",
        **database_env(settings.DATABASES["default"]),
    )
    env.update(extra)  # DJANGO_SETTINGS_MODULE included
    return env


JOBS_WORKER = [sys.executable, str(ROOT / "manage.py"), "jobs_worker"]
ARQ_WORKER = [sys.executable, "-m", "arq", "jobs.arq.WorkerSettings"]  # arq's CLI


class WorkerProcess:
    """A worker subprocess (`manage.py jobs_worker`, or `command`), its output
    in a log file."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log: Path,
        command: list[str] = JOBS_WORKER,
    ) -> None:
        self.log_path = log
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [*command, *args],
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
