"""Workflows (chain, group, chord) run by an in-process worker against a real Redis."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management import call_command
from django.tasks import default_task_backend
from django.tasks.exceptions import TaskResultDoesNotExist
from django.test import override_settings

from jobs import (
    JobCancelled,
    JobExpired,
    SerializationError,
    TaskFailed,
    WorkflowError,
    chain,
    chord,
    get_workflow,
    group,
)
from jobs.redis import connections, flows
from jobs.redis.keys import WORKFLOW_KEY_PREFIX, queue_key
from jobs.testing import adrain, drain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_chain_passes_each_return_value_to_the_next_step(r):
    flow = chain(tasks.add.bind(1, 2), tasks.double.bind(), tasks.double.bind())
    result = flow.enqueue()
    state = r.hkeys(WORKFLOW_KEY_PREFIX + result.id)
    assert b"h:1:0" in state and b"t:1:0" in state  # kept until its stage is queued
    assert b"h:0:0" not in state  # queued: the payload is the job's own now
    drain()
    assert result.get(timeout=5) == 12
    assert result.status == "SUCCESSFUL"
    steps = [default_task_backend.get_result(i) for i in result.step_ids]
    assert [s.return_value for s in steps] == [3, 6, 12]
    assert [s.args for s in steps] == [[1, 2], [3], [6]]  # as they ran
    assert steps[1].meta["workflow"] == {"id": result.id, "stage": 1, "index": 0}


def test_steps_keep_their_priority():
    flow = chain(
        tasks.add.using(priority=5).bind(1, 2), tasks.double.using(priority=-3).bind()
    )
    result = flow.enqueue()
    drain()
    assert result.get(timeout=5) == 6
    steps = [default_task_backend.get_result(i) for i in result.step_ids]
    assert [s.task.priority for s in steps] == [5, -3]


def test_a_step_can_ignore_the_previous_value():
    flow = chain(tasks.add.bind(1, 2), tasks.add.bind(10, 5).ignore_previous())
    result = flow.enqueue()
    drain()
    assert result.get(timeout=5) == 15


def test_a_failure_stops_the_chain_and_the_handle_reraises_it(r):
    flow = chain(tasks.add.bind(1, 2), tasks.boom.bind(), tasks.double.bind())
    result = flow.enqueue()
    drain()
    with pytest.raises(ValueError, match="3"):  # boom(3): the previous value
        result.get(timeout=5)
    _, failed, never = result.step_ids
    assert result.status == "FAILED"
    assert result.failed_id == failed
    assert result.failed_step.status == "FAILED"
    assert result.stage == 1
    assert not r.exists(f"arq:job:{never}")  # never queued
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(never)


async def test_a_group_returns_its_values_in_the_order_given():
    # The first member ends last: order is the group's, not the finishing order.
    flow = group(
        tasks.member.bind("g0", 0, 0.2),
        tasks.member.bind("g1", 1, 0.1),
        tasks.member.bind("g2", 2),
    )
    result = await flow.aenqueue()
    await adrain()
    assert await result.aget(timeout=5) == [0, 1, 2]


def test_a_chord_runs_its_callback_once_with_the_group_values(r):
    header = group(tasks.add.bind(1, 1), tasks.add.bind(2, 2), tasks.add.bind(3, 3))
    result = chord(header, tasks.tally.bind("c")).enqueue()
    drain()
    assert result.get(timeout=5) == 12
    assert int(r.get("test:runs:c")) == 1
    assert [json.loads(v) for v in r.lrange("test:tally:c", 0, -1)] == [[2, 4, 6]]
    assert result.kind == "chord"


def test_a_group_inside_a_chain_is_a_stage_of_it():
    inner = group(tasks.double.bind(), tasks.add.bind(10))
    flow = chain(tasks.add.bind(1, 2), inner, tasks.tally.bind("n"))
    result = flow.enqueue()
    drain()
    assert result.get(timeout=5) == 19  # tally([double(3), add(3, 10)])


def test_nesting_a_group_refuses_clearly_and_queues_nothing(r):
    inner = chain(tasks.add.bind(1, 2), tasks.double.bind())
    with pytest.raises(WorkflowError, match="A chain inside a group is not supported"):
        group(inner, tasks.add.bind(1, 1))
    with pytest.raises(WorkflowError, match="A group inside a group"):
        group(group(tasks.add.bind(1, 1)))
    with pytest.raises(WorkflowError, match=r"task\.bind"):
        chain(tasks.add)
    with pytest.raises(WorkflowError, match="at least one"):
        group()
    assert r.dbsize() == 0


def test_bad_input_refuses_the_whole_workflow_and_writes_nothing(r):
    with pytest.raises(SerializationError, match="args"):
        chain(tasks.add.bind(1, 2), tasks.listed.bind({1, 2})).enqueue()
    late = tasks.add.using(run_after=timedelta(seconds=60)).bind(1, 2)
    with pytest.raises(WorkflowError, match="run_after"):
        chain(tasks.add.bind(1, 2), late).enqueue()
    assert r.dbsize() == 0


def test_cancelling_a_queued_step_fails_the_workflow():
    flow = group(tasks.add.bind(1, 1), tasks.add.bind(2, 2))
    result = flow.enqueue()
    assert default_task_backend.cancel(result.step_ids[1])
    with pytest.raises(JobCancelled):
        result.get(timeout=5)  # at once: no worker needed


def test_a_step_ended_twice_counts_once(r):
    # A re-run after a lost lease ends the same job again: the chord's callback
    # must still wait for the other member, and be queued once.
    header = [tasks.add.bind(1, 1), tasks.add.bind(2, 2)]
    result = chord(header, tasks.tally.bind("twice")).enqueue()
    first, second, callback = result.step_ids
    wire = connections.sync_wire(default_task_backend.config)
    keys = [queue_key("default"), "", "", WORKFLOW_KEY_PREFIX + result.id]

    def end(job_id: str, index: int, value: str) -> list[int]:
        args = [job_id, "w", "", 0, 1, "", result.id, 0, index, "ok", value]
        return flows.FINISH_STEP.call(wire, keys, args)

    assert end(first, 0, "2") == [0, 1]  # counted
    assert end(first, 0, "2") == [0, 0]  # not again
    assert end(second, 1, "4") == [0, 4]  # the last one: next stage
    assert end(second, 1, "4") == [0, 0]
    assert r.zrange(queue_key("default"), 0, -1) == [callback.encode()]
    drain()
    assert result.get(timeout=5) == 6
    assert int(r.get("test:runs:twice")) == 1


def test_a_workflow_is_found_again_by_its_id():
    result = chain(tasks.add.bind(1, 2)).enqueue()
    drain()
    again = get_workflow(result.id)
    assert again.status == "SUCCESSFUL"
    assert again.return_value == 3
    assert again.layout[0]["steps"][0]["task"] == "tests.tasks.add"
    with pytest.raises(TaskResultDoesNotExist):
        get_workflow("nope")


@pytest.mark.parametrize(
    "step",
    [{"id": 5}, {"id": "gone", "stage": 0, "index": 0}, "not a step"],
    ids=["malformed", "no-such-workflow", "not-a-dict"],
)
def test_a_job_claiming_a_workflow_it_is_not_in_ends_as_a_plain_job(r, step):
    backend = default_task_backend
    result = backend.enqueue(tasks.add, [1, 2], {}, meta={"workflow": step})
    assert drain()["complete"] == 1
    result.refresh()
    assert result.return_value == 3
    assert not r.keys("jobs:workflow:*")


def test_steps_keep_their_priority_and_queue():
    flow = chain(
        tasks.add.bind(1, 2),
        tasks.double.using(priority=5).bind(),
        tasks.record.using(queue_name="low").bind(),
    )
    result = flow.enqueue()
    drain(queues=["default", "low"])
    assert result.get(timeout=5) == 6
    steps = [default_task_backend.get_result(i) for i in result.step_ids]
    assert [s.task.priority for s in steps[1:2]] == [5]
    assert steps[2].task.queue_name == "low"


async def test_a_step_that_expired_before_it_ran_fails_the_workflow():
    result = await group(tasks.add.using(expires=0.2).bind(1, 1)).aenqueue()
    time.sleep(0.3)  # no worker runs meanwhile: the job's key expires
    await adrain()
    with pytest.raises(JobExpired):
        await result.aget(timeout=1)
    assert result.failed_id == result.step_ids[0]


def test_a_context_task_gets_the_previous_value_after_its_context():
    result = chain(tasks.add.bind(1, 2), tasks.with_context.bind()).enqueue()
    drain()
    value = result.get(timeout=5)
    assert value["value"] == 3
    assert value["job_id"] == result.step_ids[1]


def test_workflows_with_results_in_another_cache():
    base = settings.TASKS["default"]
    options = {**base["OPTIONS"], "RESULTS_CACHE": "db"}
    caches = {
        **settings.CACHES,
        "db": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "results",
        },
    }
    with override_settings(
        CACHES=caches, TASKS={"default": {**base, "OPTIONS": options}}
    ):
        call_command("createcachetable", "results")
        assert not default_task_backend.results.colocated
        ok = chain(tasks.add.bind(1, 2), tasks.double.bind()).enqueue()
        first = default_task_backend.get_result(ok.step_ids[0])
        assert first.status == "READY"  # written outside the script
        failed = chain(tasks.add.bind(1, 2), tasks.boom.bind()).enqueue()
        drain()
        assert ok.get(timeout=5) == 6
        with pytest.raises(ValueError, match="3"):
            failed.get(timeout=5)


def test_workflows_go_on_after_redis_forgot_its_scripts(r):
    result = chord([tasks.add.bind(1, 1)], tasks.tally.bind("flush")).enqueue()
    r.script_flush()  # as after a restart: FINISH_STEP is loaded again
    drain()
    assert result.get(timeout=5) == 2
    r.script_flush()
    again = chain(tasks.add.bind(2, 2)).enqueue()  # ENQUEUE_FLOW too
    drain()
    assert again.get(timeout=5) == 4


async def test_a_failure_whose_step_record_expired_raises_task_failed(r):
    result = await chain(tasks.boom.bind("gone")).aenqueue()
    await adrain()
    r.delete(default_task_backend.results.raw_key(result.step_ids[0]))
    with pytest.raises(TaskFailed, match=f"Step {result.step_ids[0]}"):
        await result.aget(timeout=1)
    with pytest.raises(TaskFailed):
        await sync_to_async(result.get)(timeout=1)


def test_rate_limited_steps_wait_their_turn_and_the_chord_still_ends_once(r):
    # A step over its task's rate goes back to its queue (not an attempt, not
    # an end): the workflow counts it when it has run.
    header = group(*(tasks.rated.bind(f"s{i}") for i in range(4)))
    result = chord(header, tasks.listed.bind()).enqueue()
    for _ in range(50):  # a burst drain stops at jobs due later: drain again
        drain()
        result.refresh()
        if result.status != "RUNNING":
            break
        time.sleep(0.05)
    assert result.get(timeout=1) == [["s0", "s1", "s2", "s3"]]
    assert r.llen("test:rated") == 4
