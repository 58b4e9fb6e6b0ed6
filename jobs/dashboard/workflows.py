"""Workflows (chains, groups, chords) as the dashboard shows them: which stage
each is at, and which step failed it. Read from the workflows' hashes and the
steps' result records; nothing here changes a workflow."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from jobs.backend import RESULT_ID
from jobs.dashboard import monitor
from jobs.redis.keys import WORKFLOW_KEY_PREFIX, WORKFLOWS_KEY
from jobs.workflowresults import FIELDS, parse_state

if TYPE_CHECKING:
    from jobs.backend import JobsBackend
    from jobs.records import Record

WORKFLOWS_SHOWN = 20  # newest workflows listed on the dashboard


def states(backend: JobsBackend, ids: list[str]) -> list[dict[str, Any]]:
    """The states of the workflows `ids` that still exist, in order."""
    pipe = monitor.client_of(backend).pipeline(transaction=False)
    for wid in ids:
        pipe.hmget(WORKFLOW_KEY_PREFIX + wid, list(FIELDS))
        pipe.hget(WORKFLOW_KEY_PREFIX + wid, "created")
    replies = pipe.execute()
    found = []
    for wid, values, created in zip(ids, replies[::2], replies[1::2], strict=True):
        state = parse_state(wid, values)
        if state is not None:
            state["created"] = monitor.from_ms(int(created or 0))
            found.append(state)
    return found


def recent_rows(backend: JobsBackend) -> list[dict[str, Any]]:
    """The newest workflows, newest first, with their failed step's error."""
    client = monitor.client_of(backend)
    raw = cast("list[bytes]", client.zrevrange(WORKFLOWS_KEY, 0, WORKFLOWS_SHOWN - 1))
    rows = states(backend, [wid.decode() for wid in raw])
    failed = monitor.records(backend, [r["failed"] for r in rows if r["failed"]])
    for row in rows:
        row["failed_record"] = failed.get(row["failed"] or "")
        row["at_stage"] = row["stage"] + 1
    return [summed_up(row) for row in rows]


def summed_up(row: dict[str, Any]) -> dict[str, Any]:
    """Add what a table row shows: the failed step's task and error class."""
    record = row.get("failed_record") or {}
    errors = record.get("errors") or []
    error = errors[-1] if errors else None
    row["failed_task"] = record.get("task", "")
    row["error_class"] = error["exception_class_path"].rsplit(".")[-1] if error else ""
    row["error_message"] = error["message"] if error else ""
    return row


def detail(backend: JobsBackend, wid: str) -> dict[str, Any] | None:
    """One workflow with every step's status, stage by stage (None: gone)."""
    found = states(backend, [wid])
    if not found:
        return None
    state = found[0]
    ids = [step["id"] for stage in state["layout"] for step in stage["steps"]]
    records = monitor.records(backend, ids)
    state["stage_rows"] = [
        {
            "number": number,
            "group": stage["group"],
            "steps": [
                step_row(step, records.get(step["id"])) for step in stage["steps"]
            ],
        }
        for number, stage in enumerate(state["layout"], 1)
    ]
    state["at_stage"] = state["stage"] + 1
    return state


def step_row(step: dict[str, Any], record: Record | None) -> dict[str, Any]:
    """A step's id, task and status ("-": not queued yet, or expired)."""
    if record is None:
        return {"id": step["id"], "task": step["task"], "exists": False}
    errors = record.get("errors") or []
    ended = record.get("finished_at")
    return {
        "id": step["id"],
        "task": step["task"],
        "status": record.get("status", "-"),
        "ended": datetime.fromisoformat(ended) if ended else None,
        "error": errors[-1] if errors else None,
        "exists": True,
    }


def step_of(record: Record) -> dict[str, Any] | None:
    """{"id", "stage", "index"} of a step's job, for a link to its workflow."""
    step = (record.get("meta") or {}).get("workflow")
    if isinstance(step, dict) and RESULT_ID.match(str(step.get("id", ""))):
        return step
    return None
