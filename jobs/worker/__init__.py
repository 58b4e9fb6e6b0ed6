"""The worker: claims jobs, runs them, records their outcomes, keeps leases.

`jobs_worker` runs `JobsWorker` (one process) or the `Supervisor` (`-p N`).
"""

from __future__ import annotations

from jobs.worker.loop import JobsWorker

__all__ = ["JobsWorker"]
