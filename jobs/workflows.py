"""Workflows of Django tasks: chain, group and chord, durable in Redis.

    from jobs import chain, chord, group

    flow = chain(fetch.bind(url), parse.bind(), notify.bind("done").ignore_previous())
    result = flow.enqueue()     # or: result = await flow.aenqueue()
    result.get(timeout=60)      # the last step's value, or the failure re-raised

A chain runs its steps one after another, each receiving the previous step's
return value before its own arguments; a group runs its steps side by side and
returns their values as a list, in the order given; a chord runs a group, then
its callback once with that list. A group inside a chain is a stage of it (a
chord is a chain of a group and a callback); a chain or a group inside a group
is refused at build time with WorkflowError.

How it holds up (the scripts are in jobs.redis.flows): the whole workflow is
written to Redis at enqueue, and the script that ends a step's job also counts
the step and queues the next stage, in one atomic step. The next stage (a
chord's callback) is queued exactly once, whatever the retries, worker crashes
and number of workers; each step's job runs at least once, as any job does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.tasks.signals import task_enqueued
from django.utils import timezone

from jobs import serialization
from jobs.exceptions import WorkflowError
from jobs.redis import flows
from jobs.redis.errors import translate_redis_errors
from jobs.redis.keys import WORKFLOW_KEY_PREFIX, WORKFLOWS_KEY, WORKFLOWS_MAX
from jobs.task import JobsTask, Step
from jobs.workflowresults import WorkflowResult

if TYPE_CHECKING:
    from jobs.backend import JobsBackend
    from jobs.enqueue import Prepared

# The slot of the previous value in a payload, cut out at enqueue.
PREVIOUS = "\x00jobs:previous\x00"
_PREVIOUS_JSON = serialization.dumps(PREVIOUS)


@dataclass(frozen=True, slots=True)
class Stage:
    """Steps that run side by side; the next stage starts when all succeeded."""

    steps: tuple[Step, ...]
    group: bool  # its value is the list of its steps' values (else the one's)


@dataclass(frozen=True, slots=True)
class Workflow:
    """Stages of steps, built by chain(), group() or chord(); enqueue it to run it."""

    kind: str  # "chain", "group" or "chord"
    stages: tuple[Stage, ...]

    def enqueue(self) -> WorkflowResult:
        """Queue the workflow's first stage; return the handle of the whole."""
        backend, flow = _prepared(self)
        with translate_redis_errors(backend.config):
            backend.write(flows.ENQUEUE_FLOW, flow.keys, flow.args)
            for job in flow.first:
                backend.results.store_outside(job.record, only_new=True)
        flow.announce(backend)
        return flow.result

    async def aenqueue(self) -> WorkflowResult:
        """See enqueue()."""
        backend, flow = _prepared(self)
        with translate_redis_errors(backend.config):
            await backend.awrite(flows.ENQUEUE_FLOW, flow.keys, flow.args)
            for job in flow.first:
                await backend.results.astore_outside(job.record, only_new=True)
        flow.announce(backend)
        return flow.result


def chain(*parts: Step | Workflow) -> Workflow:
    """Run steps one after another, each given the previous one's return value.

    A part may be a group (its steps run side by side, the next part gets their
    values as a list) or another chain (its stages are spliced in).
    """
    stages: list[Stage] = []
    for part in parts:
        if isinstance(part, Step):
            stages.append(Stage((part,), group=False))
        elif isinstance(part, Workflow):
            stages.extend(part.stages)
        else:
            raise WorkflowError(_not_a_step("chain", part))
    if not stages:
        raise WorkflowError("chain() needs at least one step.")
    return Workflow("chain", tuple(stages))


def group(*steps: Step) -> Workflow:
    """Run steps side by side; the value is the list of theirs, in this order."""
    for step in steps:
        if isinstance(step, Workflow):
            raise WorkflowError(
                f"A {step.kind} inside a group is not supported: a group's members "
                "are steps (task.bind(...)). Put the group inside a chain instead "
                "(chain(group(...), task.bind())), or enqueue the inner workflow "
                "from a step."
            )
        if not isinstance(step, Step):
            raise WorkflowError(_not_a_step("group", step))
    if not steps:
        raise WorkflowError("group() needs at least one step.")
    return Workflow("group", (Stage(tuple(steps), group=True),))


def chord(header: Workflow | Iterable[Step], callback: Step | Workflow) -> Workflow:
    """Run a group, then `callback` once with the list of its values."""
    if not isinstance(header, Workflow):
        header = group(*header)
    if header.kind != "group":
        raise WorkflowError(f"A chord's header is a group, not a {header.kind}.")
    return Workflow("chord", chain(header, callback).stages)


def _not_a_step(where: str, part: object) -> str:
    return (
        f"{where}() takes steps made with task.bind(...), not {part!r}; "
        "e.g. add.bind(1, 2)."
    )


@dataclass(frozen=True, slots=True)
class _Flow:
    """A workflow checked and serialized for ENQUEUE_FLOW."""

    keys: list[str]
    args: list[Any]
    first: list[Prepared]  # the first stage's jobs
    result: WorkflowResult

    def announce(self, backend: JobsBackend) -> None:
        for job in self.first:
            task_enqueued.send(type(backend), task_result=job.result)


def _prepared(workflow: Workflow) -> tuple[JobsBackend, _Flow]:
    """Check and serialize every step of `workflow`, touching no Redis."""
    backend = _backend_of(workflow)
    wid = uuid.uuid4().hex
    config = backend.config
    fields: list[Any] = ["stages", len(workflow.stages), "rttl", backend.results.ttl_ms]
    jobs_by_stage: list[list[Prepared]] = []
    for s, stage in enumerate(workflow.stages):
        fields += [f"n:{s}", len(stage.steps), f"g:{s}", int(stage.group)]
        jobs = [
            _step_fields(backend, wid, s, i, step, fields)
            for i, step in enumerate(stage.steps)
        ]
        jobs_by_stage.append(jobs)
    first = jobs_by_stage[0]
    layout = _layout(workflow, [[job.result.id for job in s] for s in jobs_by_stage])
    fields += ["layout", serialization.dumps(layout), "kind", workflow.kind]
    now_ms = int(timezone.now().timestamp() * 1000)
    # Kept while a stage may wait (its longest job TTL), then as long as results;
    # every step that counts renews it.
    longest = max(job.args[3] for stage in jobs_by_stage for job in stage)
    wttl = int(longest + config.result_ttl * 1000)
    args = [wid, now_ms, wttl, WORKFLOWS_MAX, *fields]
    result = WorkflowResult(id=wid, backend=backend.alias, kind=workflow.kind)
    result.layout = layout
    return backend, _Flow(
        [WORKFLOW_KEY_PREFIX + wid, WORKFLOWS_KEY], args, first, result
    )


def _backend_of(workflow: Workflow) -> JobsBackend:
    tasks = [step.task for stage in workflow.stages for step in stage.steps]
    aliases = {task.backend for task in tasks}
    if len(aliases) > 1:
        raise WorkflowError(
            f"A workflow's steps must use one backend; these use {sorted(aliases)}."
        )
    for task in tasks:
        if not isinstance(task, JobsTask):
            raise WorkflowError(f"{task!r} is not a task of a JobsBackend.")
        if task.run_after is not None:
            raise WorkflowError(
                f"Step {task.module_path} has run_after: a step runs when the one "
                "before it ends. Defer the work inside a step, or enqueue the "
                "workflow later."
            )
        if task.unique:
            raise WorkflowError(
                f"Step {task.module_path} is unique: a workflow queues its steps "
                "itself and cannot give a step's place to another job. Use the "
                "task without unique in workflows."
            )
    return tasks[0].get_backend()


def _step_fields(
    backend: JobsBackend, wid: str, s: int, i: int, step: Step, fields: list[Any]
) -> Prepared:
    """Prepare one step's job and append its hash fields to `fields`."""
    takes_previous = s > 0 and step.takes_previous
    args = [PREVIOUS, *step.args] if takes_previous else list(step.args)
    meta = {"workflow": {"id": wid, "stage": s, "index": i}}
    job = backend.prepare(step.task, args, step.kwargs, meta=meta)
    payload: bytes = job.args[1]
    slot = f"{s}:{i}"
    # What the ENQUEUE script would take: keys, the job key's TTL, priority.
    queue, wake, ttl = job.keys[1], job.keys[2], job.args[3]
    fields += [f"j:{slot}", job.result.id, f"q:{slot}", queue, f"w:{slot}", wake]
    fields += [f"x:{slot}", ttl]
    if job.args[8]:  # a priority other than 0: its set and its rank
        fields += [f"pk:{slot}", job.keys[5], f"pv:{slot}", job.args[8]]
    if takes_previous:
        head, _, tail = payload.partition(_PREVIOUS_JSON)
        fields += [f"h:{slot}", head, f"t:{slot}", tail]
        job.record["args"] = list(step.args)
        object.__setattr__(job.result, "args", list(step.args))
    else:
        fields += [f"h:{slot}", payload]
    result_key, encoded = backend.results.script_args(job.record)
    if result_key:
        fields += [f"rk:{slot}", result_key, f"rv:{slot}", encoded]
    return job


def _layout(workflow: Workflow, ids: list[list[str]]) -> list[dict[str, Any]]:
    """What readers (the handle, the dashboard) need to show the workflow."""
    return [
        {
            "group": stage.group,
            "steps": [
                {"id": job_id, "task": step.task.module_path}
                for step, job_id in zip(stage.steps, stage_ids, strict=True)
            ],
        }
        for stage, stage_ids in zip(workflow.stages, ids, strict=True)
    ]


__all__ = ["Stage", "Workflow", "WorkflowResult", "chain", "chord", "group"]
