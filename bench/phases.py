"""The phases of a job and of an enqueue, as profile_phases.py counts them.

A phase is named by functions (regexes on py-spy's function names) and the
package they live in, not by file, so the tables survive code moving between
modules (`jobs/worker.py` becoming `jobs/worker/...`). When a function moves
into a phase of its own or is renamed, add it here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

JOBS = r"^jobs/"  # the package, whatever module inside it
Marker = tuple[re.Pattern[str], re.Pattern[str]]


def mark(funcs: str, path: str = JOBS) -> Marker:
    return re.compile(funcs), re.compile(path)


@dataclass(frozen=True)
class Phase:
    name: str
    covers: str  # what the table says it is
    markers: tuple[Marker, ...]

    def matches(self, func: str, path: str) -> bool:
        return any(f.fullmatch(func) and p.search(path) for f, p in self.markers)


LOOP = "event loop (uvloop's C code)"
ASYNCIO = "asyncio, not attributed"
OTHER = "other"
CUT = "cut stacks naming no phase"

WORKER = [
    Phase(
        "claim",
        "`Claimer.claim`: the CLAIM script through `AsyncWire.call`",
        (mark(r"(JobsWorker|Claimer)\.claim"),),
    ),
    Phase(
        "decode",
        "`Claimed.decoded` → `JobPayload.decode` (json)",
        (mark(r"Claimed\.decoded|JobPayload\.decode"),),
    ),
    Phase(
        "job scheduling",
        "`consume` loop, `start` (create_task), `run_claimed`, `outcome_of`, "
        "`job_done`, `asyncio.shield`",
        (
            mark(r"JobsWorker\.(consume|start|job_done)|Claimer\.wait_for_work"),
            mark(r"(JobsWorker|Recorder)\.(run_claimed|outcome_of|not_runnable)"),
        ),
    ),
    Phase(
        "execute: build the result",
        "`execution.start`, `build_result` (JobResult, `timezone.now`)",
        (mark(r"start|build_result|_restore_history", r"^jobs/(.*/)?execution\.py"),),
    ),
    Phase(
        "execute: RUNNING record",
        "`to_record`, `write_running`, `RunningWriter` (add, timer, discard)",
        (
            mark(r"(JobResult\.)?to_record|RunningWriter\..*"),
            mark(r"(JobsWorker|Recorder)\.(write_running|_?skip_running)"),
        ),
    ),
    Phase(
        "execute: call the task",
        "`execute`'s own lines, `call_task`, `_call`",
        (mark(r"execute|call_task|_call", r"^jobs/(.*/)?execution\.py"),),
    ),
    Phase(
        "the job itself (bench)",
        "`noop` → `jobside.done_async`: an INCR on the harness Redis through "
        "redis.asyncio, the same job for every system",
        (mark(r".*", r"(^|/)(bench_tasks|jobside)\.py$"),),
    ),
    Phase(
        "execute: end",
        "`ended` (finished record), `check_json` of the return value",
        (mark(r"ended|check_json"),),
    ),
    Phase(
        "signals",
        "Django's `task_started` / `task_finished`: `Signal.send`",
        (mark(r"Signal\.send", r"^django/dispatch/"),),
    ),
    Phase(
        "result encode",
        "the finished record to JSON (`encode`, `script_args`)",
        (
            mark(r"encode", r"^jobs/(.*/)?(results|records)\.py"),
            mark(r"(Redis)?ResultStore\.script_args"),
        ),
    ),
    Phase(
        "finish",
        "`persist`, `write_outcome`, the FINISH command queued "
        "(`CommandBatcher.script`/`send`), `JobMetrics.observe`",
        (
            mark(r"(JobsWorker|Recorder)\.(persist|write_outcome)|run_seconds"),
            mark(r"CommandBatcher\.(script|send)|LuaScript\.command|JobMetrics\..*"),
        ),
    ),
    Phase(
        "batcher: pipeline to Redis",
        "`CommandBatcher._send_all` → `AsyncWire.call_many`: pack, write, read "
        "the replies, resolve the futures",
        (mark(r"CommandBatcher\._(send_all|send|pipeline)"),),
    ),
    Phase(
        "background",
        "heartbeat (leases, registry, metrics), cancel listener, scheduler",
        (
            mark(r"JobsWorker\.(heartbeat.*|cancel_listener|sweep_cancels|register)"),
            mark(r"(Heartbeat|Canceller|Scheduler)\..*|.*scheduler.*"),
        ),
    ),
]

PRODUCER = [
    Phase(
        "bench loop",
        "the harness's loop and `Producer.single` (the same for every config)",
        (mark(r".*", r"^(harness|jobs_bench)\.py$|(^|/)harness\.py$"),),
    ),
    Phase(
        "Django's Task.(a)enqueue",
        "`Task.aenqueue`/`enqueue`, `get_backend`",
        (mark(r"Task\.(a?enqueue|get_backend)", r"^django/tasks/"),),
    ),
    Phase(
        "prepare: JobResult, id, clock, keys",
        "`prepare`'s own lines (`JobsBackend.prepare`, then `jobs.enqueue`): "
        "`JobResult(...)`, `uuid4`, `timezone.now`",
        (
            mark(r"JobsBackend\.prepare"),
            mark(r"prepare|new_result|due", r"^jobs/(.*/)?enqueue\.py"),
        ),
    ),
    Phase(
        "validation",
        "`validate_task` (cached), `check_json` of args and kwargs",
        (mark(r"JobsBackend\.(validate_task|_validate)|check_json"),),
    ),
    Phase(
        "payload encode",
        "`JobPayload.encode` (json), `encode_payload`",
        (mark(r"JobPayload\.encode|encode_payload"),),
    ),
    Phase(
        "READY record",
        "`to_record` and its JSON (`encode`, `script_args`), stored by the script",
        (
            mark(r"to_record|encode", r"^jobs/(.*/)?(results|records)\.py"),
            mark(r"JobResult\.to_record|(Redis)?ResultStore\.script_args"),
        ),
    ),
    Phase(
        "script call",
        "`(a)submit`, `translate_redis_errors`, `connections.*_wire`, "
        "`LuaScript.(a)call`/`command`",
        (
            mark(r"JobsBackend\.(a?submit|a?enqueue)|translate_redis_errors\..*"),
            mark(r"LuaScript\..*"),
            mark(r".*", r"^jobs/(.*/)?connections\.py"),
        ),
    ),
    Phase(
        "wire: one round trip",
        "`AsyncWire.call` / `SyncWire.call`: pack, write, read the reply",
        (mark(r"(Async|Sync)Wire\..*|pack"),),
    ),
    Phase(
        "signal",
        "`task_enqueued`: `Signal.send`",
        (mark(r"Signal\.send", r"^django/dispatch/"),),
    ),
]
