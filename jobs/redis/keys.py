"""Redis key names, in one place.

Job, in-progress and retry keys keep arq's names so `arq.jobs.Job(id, redis)`
and arq's tooling can inspect our jobs; the rest are ours.
"""

from __future__ import annotations

from arq.constants import (
    abort_jobs_ss as ABORT_KEY,
)
from arq.constants import (
    default_queue_name as ARQ_DEFAULT_QUEUE,
)
from arq.constants import (
    in_progress_key_prefix as IN_PROGRESS_KEY_PREFIX,
)
from arq.constants import (
    job_key_prefix as JOB_KEY_PREFIX,
)
from arq.constants import (
    result_key_prefix as ARQ_RESULT_KEY_PREFIX,
)
from arq.constants import (
    retry_key_prefix as RETRY_KEY_PREFIX,
)

QUEUE_KEY_PREFIX = "arq:queue:"  # + queue name: sorted set, score = due time (ms)
DEFAULT_QUEUE = "default"  # Django's default queue name: arq's own queue key
# Jobs of a priority other than 0 wait in a queue of their own beside arq's,
# one per (queue, priority), scored the same way; a set per queue lists the
# priorities that have one, so a claim visits them highest first.
PRIORITY_QUEUE_KEY_PREFIX = "jobs:queue:"  # + queue name + ":" + priority
PRIORITIES_KEY_PREFIX = "jobs:priorities:"  # + queue name: sorted set of priorities
WAKE_KEY_PREFIX = "jobs:wake:"  # + queue name: list of wake-up tokens for idle workers
UNIQUE_KEY_PREFIX = "jobs:unique:"  # + job id: claims a caller-chosen job id
# + task path + ":" + the task's `unique` key: the id of the job holding it (held
# while that job's arq:job:<id> key exists: queued, running or retrying)
LOCK_KEY_PREFIX = "jobs:lock:"
RATE_KEY_PREFIX = "jobs:rate:"  # + task path: hash, its next `free` turn and `tat` (ms)
TURNS_KEY_SUFFIX = ":turns"  # after a rate key: sorted set, job id -> its turn (ms)
DONE_CHANNEL_PREFIX = "jobs:done:"  # + job id: pub/sub, published when a job ends
PROGRESS_CHANNEL_PREFIX = "jobs:progress:"  # + job id: pub/sub, progress updates
CANCEL_CHANNEL = "jobs:cancel"  # pub/sub: ids of running jobs to cancel
RESULT_KEY_PREFIX = "jobs:result:"  # + job id: cache key, before the cache's own prefix
WORKERS_KEY = "jobs:workers"  # sorted set: worker id -> last heartbeat (ms)
RECENT_KEY = "jobs:recent"  # sorted set: finished job id -> end time (ms)
RECENT_MAX = 100_000  # entries kept in RECENT_KEY (besides its age limit)
METRICS_KEY = "jobs:metrics"  # hash: counters and duration histograms, by task
WORKER_KEY_PREFIX = "jobs:worker:"  # + worker id: hash describing a live worker
SCHEDULES_CHANNEL = "jobs:schedules"  # pub/sub: pks of changed Schedule rows, or "*"
SCHEDULES_LAST_KEY = "jobs:schedules:last"  # hash: schedule key -> its last job id
# hash: Schedule pk -> runs ever enqueued (only grows), and `epoch`: when the
# hash began (us), so that a Redis that lost it is told apart from one that did not
SCHEDULES_RUNS_KEY = "jobs:schedules:runs"
# sorted set: Schedule pk -> its total in SCHEDULES_RUNS_KEY not yet in the database
SCHEDULES_UNWRITTEN_KEY = "jobs:schedules:unwritten"
WORKFLOW_KEY_PREFIX = "jobs:workflow:"  # + workflow id: hash, see jobs.redis.flows
WORKFLOWS_KEY = "jobs:workflows"  # sorted set: workflow id -> created (ms)
WORKFLOWS_MAX = 10_000  # entries kept in WORKFLOWS_KEY (the hashes expire alone)

WAKE_TOKENS_MAX = 1000  # tokens kept per queue; more would only wake idle workers
UNIQUE_TTL = 86_400  # seconds a caller-chosen job id stays taken after enqueue


def queue_key(name: str, priority: int = 0) -> str:
    """The sorted set of queue `name`'s jobs of `priority`.

    Priority 0: arq's `arq:queue` for Django's `default`, so jobs enqueued by
    arq's `enqueue_job()` and ours share one queue, else `arq:queue:<name>`
    (what arq's `_queue_name` takes for other queues). Other priorities: a
    sorted set of their own beside it, `jobs:queue:<name>:<priority>`.
    """
    if priority == 0:
        return ARQ_DEFAULT_QUEUE if name == DEFAULT_QUEUE else QUEUE_KEY_PREFIX + name
    # Unambiguous: a priority is an integer, so it holds no ":".
    return f"{PRIORITY_QUEUE_KEY_PREFIX}{name}:{priority}"


def priority_prefix(name: str) -> str:
    """What the scripts put before a priority to name its queue (see queue_key)."""
    return f"{PRIORITY_QUEUE_KEY_PREFIX}{name}:"


__all__ = [
    "ABORT_KEY",
    "ARQ_DEFAULT_QUEUE",
    "ARQ_RESULT_KEY_PREFIX",
    "CANCEL_CHANNEL",
    "DEFAULT_QUEUE",
    "DONE_CHANNEL_PREFIX",
    "IN_PROGRESS_KEY_PREFIX",
    "JOB_KEY_PREFIX",
    "LOCK_KEY_PREFIX",
    "METRICS_KEY",
    "PRIORITIES_KEY_PREFIX",
    "PRIORITY_QUEUE_KEY_PREFIX",
    "PROGRESS_CHANNEL_PREFIX",
    "QUEUE_KEY_PREFIX",
    "RATE_KEY_PREFIX",
    "RECENT_KEY",
    "RECENT_MAX",
    "RESULT_KEY_PREFIX",
    "RETRY_KEY_PREFIX",
    "SCHEDULES_CHANNEL",
    "SCHEDULES_LAST_KEY",
    "SCHEDULES_RUNS_KEY",
    "SCHEDULES_UNWRITTEN_KEY",
    "TURNS_KEY_SUFFIX",
    "UNIQUE_KEY_PREFIX",
    "UNIQUE_TTL",
    "WAKE_KEY_PREFIX",
    "WAKE_TOKENS_MAX",
    "WORKERS_KEY",
    "WORKER_KEY_PREFIX",
    "WORKFLOWS_KEY",
    "WORKFLOWS_MAX",
    "WORKFLOW_KEY_PREFIX",
    "priority_prefix",
    "queue_key",
]
