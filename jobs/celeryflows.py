"""Celery's chain, group and chord over jobs.chain/group/chord, started
Celery's ways: `chain(...)()`, `.delay()`, `.apply_async()`, `chord(h)(cb)`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from jobs.task import Step
from jobs.workflowresults import WorkflowResult
from jobs.workflows import Workflow
from jobs.workflows import chain as jobs_chain
from jobs.workflows import chord as jobs_chord
from jobs.workflows import group as jobs_group


class CeleryWorkflow:
    """chain/group/chord with Celery's ways to start them."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow

    def apply_async(self) -> WorkflowResult:
        return self.workflow.enqueue()

    def delay(self) -> WorkflowResult:
        return self.workflow.enqueue()

    def __call__(self) -> WorkflowResult:
        return self.workflow.enqueue()


def chain(*steps: Step | CeleryWorkflow) -> CeleryWorkflow:
    """Celery's chain(a.s(1), b.s()): started by (), delay() or apply_async()."""
    return CeleryWorkflow(jobs_chain(*[unwrap(s) for s in steps]))


def group(*steps: Step | Iterable[Step]) -> CeleryWorkflow:
    """Celery's group(a.s(1), a.s(2)); also one iterable of steps, as Celery
    takes it: group([..]), group(a.s(i) for i in range(10))."""
    if len(steps) == 1 and isinstance(steps[0], (list, tuple, Iterator)):
        steps = tuple(steps[0])
    return CeleryWorkflow(jobs_group(*cast(tuple[Step, ...], steps)))


class chord:  # Celery's name
    """Celery's chord(header)(callback) and chord(header, callback)()."""

    def __init__(self, header: Any, body: Step | None = None) -> None:
        self.header, self.body = header, body

    def __call__(self, body: Step | None = None) -> WorkflowResult:
        return self.workflow(body).enqueue()

    def apply_async(self) -> WorkflowResult:
        return self.workflow(None).enqueue()

    def workflow(self, body: Step | None) -> Workflow:
        callback = body or self.body
        if callback is None:
            raise TypeError("chord(header) needs a callback: chord(header)(callback).")
        header = self.header
        if isinstance(header, CeleryWorkflow):
            header = header.workflow
        return jobs_chord(header, callback)


def unwrap(step: Step | CeleryWorkflow) -> Step | Workflow:
    return step.workflow if isinstance(step, CeleryWorkflow) else step
