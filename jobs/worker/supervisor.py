"""Run N worker processes under one command, replacing each as it ends.

Children are forked after Django is set up, so they start in milliseconds and
share the imported code's memory. A child leaves on its own after `--max-jobs`
jobs or above `--max-memory` (draining first, so nothing is lost in the swap); a
child that dies abruptly (OOM killer, segfault, a job calling os._exit) has its
leases released at once so its jobs run again without waiting for them to lapse.
A child whose supervisor dies (SIGKILL, OOM killer) drains as on SIGTERM and
exits, instead of running on as an orphan beside a restarted supervisor's.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from django import db

from jobs.backend import JobsBackend
from jobs.redis import connections, recovery, scripts
from jobs.redis.keys import (
    PRIORITIES_KEY_PREFIX,
    WAKE_KEY_PREFIX,
    priority_prefix,
    queue_key,
)

logger = logging.getLogger("jobs.worker")

RESTART_BACKOFF_MAX = 10.0  # seconds between restarts of a child that keeps dying
QUICK_DEATH = 2.0  # seconds; a child dying sooner than this counts as a crash loop
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL = 1.0  # seconds between a child's checks that its supervisor lives


def follow_parent(parent: int) -> None:
    """Have this child drain and exit (SIGTERM) when its supervisor `parent` dies.

    Linux tells it at once (PR_SET_PDEATHSIG); a thread polling the parent's pid
    logs why, and sends the SIGTERM itself where the kernel does not (other
    systems, or a supervisor dead before the request was made). One SIGTERM
    only: a second would hand running jobs back without their grace period.
    """
    told = kernel_tells(signal.SIGTERM) and os.getppid() == parent
    watch = threading.Thread(
        target=watch_parent, args=(parent, told), name="jobs-parent", daemon=True
    )
    watch.start()


def kernel_tells(sig: int) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(parent: int, told: bool) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    logger.warning("supervisor %d is gone: draining, then exiting", parent)
    if not told:
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Child:
    pid: int
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Keep `processes` children running `run_child()` until told to stop.

    run_child: runs one worker in the forked child and returns its exit code.
    grace: seconds children get to drain after SIGTERM before they are killed.
    burst: children that end cleanly are not replaced (the queues are empty).
    """

    def __init__(
        self,
        backend: JobsBackend,
        queues: list[str],
        processes: int,
        run_child: Callable[[], int],
        grace: float,
        burst: bool = False,
    ) -> None:
        self.burst = burst
        self.backend = backend
        self.queues = queues
        self.processes = processes
        self.run_child = run_child
        self.grace = grace
        self.children: dict[int, Child] = {}
        self.stopping = False
        self.backoff = 0.0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        logger.info(
            "supervisor %d starting %d worker processes", os.getpid(), self.processes
        )
        for _ in range(self.processes):
            self.spawn()
        while self.children:
            self.reap_one()
        logger.info("supervisor %d: all workers stopped", os.getpid())
        return 0

    def spawn(self) -> None:
        # A forked child must not share the parent's database sockets.
        db.connections.close_all()
        # Keep the imported code in pages shared with the children: without
        # this, the collector's passes write to every object and copy its page.
        gc.freeze()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            follow_parent(parent)
            code = 1
            try:
                code = self.run_child()
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = Child(pid)

    def reap_one(self) -> None:
        try:
            pid, status = os.wait()
        except InterruptedError:
            return
        except ChildProcessError:
            self.children.clear()
            return
        child = self.children.pop(pid, None)
        if child is None:
            return
        code = os.waitstatus_to_exitcode(status)
        lived = time.monotonic() - child.started
        if code != 0:
            released = self.recover(pid)
            logger.error(
                "worker process %d died (exit %s) after %.1f s; %d of its jobs "
                "released to run again",
                pid,
                code,
                lived,
                released,
            )
        if self.stopping or (self.burst and code == 0):
            return
        if code == 0:  # it left on its own: --max-jobs or --max-memory
            logger.info(
                "worker process %d exited after %.1f s (--max-jobs/--max-memory); "
                "starting its replacement",
                pid,
                lived,
            )
        self.backoff = (
            min(max(self.backoff * 2, 0.5), RESTART_BACKOFF_MAX)
            if code != 0 and lived < QUICK_DEATH
            else 0.0
        )
        if self.backoff:
            time.sleep(self.backoff)
        if not self.stopping:
            self.spawn()

    def recover(self, pid: int) -> int:
        """Make the jobs the dead child held due now (see recovery.RECOVER)."""
        keys = [queue_key(q) for q in self.queues]
        keys += [WAKE_KEY_PREFIX + q for q in self.queues]
        keys += [PRIORITIES_KEY_PREFIX + q for q in self.queues]
        prefix = f"{socket.gethostname()}:{pid}:"
        try:
            wire = connections.sync_wire(self.backend.config)
            args = [scripts.now_ms(), self.backend.config.lease_ms, prefix]
            args += [priority_prefix(q) for q in self.queues]
            return int(recovery.RECOVER.call(wire, keys, args))
        except Exception as e:  # Redis away: the leases will lapse by themselves
            logger.warning("could not release the jobs of process %d: %s", pid, e)
            return 0

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            logger.warning("second signal: stopping worker processes at once")
            self.forward(signal.SIGTERM)  # children ignore SIGINT (see JobsWorker)
            return
        self.stopping = True
        logger.info(
            "%s: stopping %d worker processes",
            signal.Signals(signum).name,
            len(self.children),
        )
        self.forward(signal.SIGTERM)
        signal.signal(signal.SIGALRM, self.on_deadline)
        signal.setitimer(signal.ITIMER_REAL, self.grace + 5)

    def on_deadline(self, signum: int, frame: FrameType | None) -> None:
        logger.error(
            "worker processes still running after the grace period: killing them"
        )
        self.forward(signal.SIGKILL)

    def forward(self, sig: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
