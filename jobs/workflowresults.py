"""The handle of an enqueued workflow: wait for the whole, read where it got to.

    result = chain(a.bind(1), b.bind()).enqueue()
    result.get(timeout=10)          # b's return value, or the failed step's error
    result.refresh(); result.status, result.stage, result.failed_step

The state is the workflow's hash in the queue's Redis (see jobs.redis.flows),
the steps' own results are in the results cache as any job's.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.tasks import task_backends
from django.tasks.exceptions import TaskResultDoesNotExist

from jobs import serialization, waiting
from jobs.exceptions import TaskFailed
from jobs.redis import connections
from jobs.redis.keys import WORKFLOW_KEY_PREFIX

if TYPE_CHECKING:
    from jobs.backend import JobsBackend
    from jobs.task import JobResult

FIELDS = ("status", "stage", "result", "failed", "kind", "layout", "stages")


def parse_state(wid: str, values: list[bytes | None]) -> dict[str, Any] | None:
    """The workflow's state from its hash fields (FIELDS), None if it is gone."""
    if values[0] is None:
        return None
    raw = dict(zip(FIELDS, values, strict=True))
    return {
        "id": wid,
        "status": cast(bytes, raw["status"]).decode(),
        "stage": int(raw["stage"] or 0),
        "stages": int(raw["stages"] or 0),
        "result": raw["result"],
        "failed": raw["failed"].decode() if raw["failed"] else None,
        "kind": raw["kind"].decode() if raw["kind"] else "",
        "layout": serialization.loads(raw["layout"]) if raw["layout"] else [],
    }


@dataclass(slots=True, kw_only=True)
class WorkflowResult:
    """An enqueued chain, group or chord (see jobs.workflows)."""

    id: str
    backend: str
    kind: str = ""
    status: str = "RUNNING"  # then SUCCESSFUL or FAILED
    stage: int = 0  # the stage running now (or the last one run)
    failed_id: str | None = None  # the id of the step's job that failed
    # [{"group": bool, "steps": [{"id": job id, "task": path}, ...]}, ...]
    layout: list[dict[str, Any]] = field(default_factory=list)
    raw_value: bytes | None = None

    @property
    def step_ids(self) -> list[str]:
        """The job ids of every step, stage by stage, in order."""
        return [step["id"] for stage in self.layout for step in stage["steps"]]

    @property
    def return_value(self) -> Any:
        """The last stage's value (a list for a group); ValueError until then."""
        if self.status != "SUCCESSFUL" or self.raw_value is None:
            raise ValueError("The workflow has not finished successfully.")
        return serialization.loads(self.raw_value)

    @property
    def failed_step(self) -> JobResult | None:
        """The result of the step that failed the workflow, if one did."""
        if self.failed_id is None:
            return None
        return self._backend().get_result(self.failed_id)

    def _backend(self) -> JobsBackend:
        return cast("JobsBackend", task_backends[self.backend])

    def _read(self) -> dict[str, Any] | None:
        client = connections.sync_client(self._backend().config)
        values = client.hmget(WORKFLOW_KEY_PREFIX + self.id, list(FIELDS))
        return parse_state(self.id, cast("list[bytes | None]", values))

    async def _aread(self) -> dict[str, Any] | None:
        client = connections.async_client(self._backend().config)
        key = WORKFLOW_KEY_PREFIX + self.id
        values = await client.hmget(key, list(FIELDS))  # type: ignore[misc]
        return parse_state(self.id, values)

    def _update(self, state: dict[str, Any] | None) -> None:
        if state is None:
            raise TaskResultDoesNotExist(self.id)
        self.status, self.stage = state["status"], state["stage"]
        self.failed_id, self.raw_value = state["failed"], state["result"]
        self.kind, self.layout = state["kind"], state["layout"]

    def refresh(self) -> None:
        """Reload the workflow's state from Redis."""
        self._update(self._read())

    async def arefresh(self) -> None:
        """See refresh()."""
        self._update(await self._aread())

    def get(self, timeout: float | None = None) -> Any:
        """Wait for the whole workflow; return its value or re-raise the error
        of the step that failed it (as JobResult.get() does). Raise
        `jobs.ResultTimeout` if it is not finished within `timeout` seconds."""
        config = self._backend().config
        self._update(waiting.until_finished(self._read, config, self.id, timeout))
        failed = None
        if self.status == "FAILED" and self.failed_id is not None:
            with suppress(TaskResultDoesNotExist):  # its record expired first
                failed = self._backend().get_result(self.failed_id)
        return self._value_or_raise(failed)

    async def aget(self, timeout: float | None = None) -> Any:
        """See get()."""
        config = self._backend().config
        state = await waiting.auntil_finished(self._aread, config, self.id, timeout)
        self._update(state)
        failed = None
        if self.failed_id is not None:
            with suppress(TaskResultDoesNotExist):
                failed = await self._backend().aget_result(self.failed_id)
        return self._value_or_raise(failed)

    def _value_or_raise(self, failed: JobResult | None) -> Any:
        if self.status == "SUCCESSFUL":
            return self.return_value
        if failed is not None and failed.errors:
            failed.value_or_raise()
        raise TaskFailed(f"Step {self.failed_id} of workflow {self.id} failed.")


def get_workflow(workflow_id: str, backend: str = "default") -> WorkflowResult:
    """Return the handle of the workflow `workflow_id`, or raise
    TaskResultDoesNotExist."""
    result = WorkflowResult(id=workflow_id, backend=backend)
    result.refresh()
    return result


async def aget_workflow(workflow_id: str, backend: str = "default") -> WorkflowResult:
    """See get_workflow()."""
    result = WorkflowResult(id=workflow_id, backend=backend)
    await result.arefresh()
    return result
