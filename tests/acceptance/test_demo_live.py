"""The demo page's live path: progress over server-sent events, and cancelling."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.acceptance.test_example_project import browser, follow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def client():
    async with browser() as c:
        yield c


def parse_events(text: str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a text/event-stream body."""
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


async def start_report(client, **body) -> str:
    answer = await client.post("/jobs/report/", json=body)
    assert answer.status_code == 202
    return answer.json()["id"]


async def test_one_stream_carries_several_jobs_progress_to_their_end(
    client, worker_process
):
    worker_process("--queues", "reports")
    ok = await start_report(client, steps=4, delay=0.1)
    bad = await start_report(client, steps=4, delay=0.1, fail_at=3)
    answer = await client.get(f"/jobs/events/?ids={ok},{bad}", timeout=30)
    assert answer.headers["Content-Type"] == "text/event-stream"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.text.startswith("retry: 2000\n\n")
    events = parse_events(answer.text)
    assert events[-1] == ("end", {"reason": "finished"})
    mine = [(e, d) for e, d in events if d.get("id") == ok]
    done = [d["progress"]["done"] for e, d in mine if e == "progress" and d["progress"]]
    assert len(done) >= 3 and done == sorted(done)  # step by step, never backwards
    assert mine[-1][0] == "done"
    final = mine[-1][1]
    assert final["status"] == "SUCCESSFUL"
    assert final["progress"] == {**final["progress"], "done": 4, "total": 4}
    assert final["result"]["steps"] == 4
    failed = next(d for e, d in events if e == "done" and d["id"] == bad)
    assert failed["status"] == "FAILED"
    assert failed["error"]["type"] == "builtins.RuntimeError"
    assert "broke at step 3" in failed["error"]["message"]
    assert "Traceback" in failed["error"]["traceback"]
    assert failed["progress"]["done"] == 2  # the last step it reported


async def test_a_finished_job_streams_its_result_and_ends(client, worker_process):
    worker_process("--queues", "reports")
    job = await start_report(client, steps=1, delay=0.05)
    await follow(client, f"/jobs/{job}/")
    events = parse_events((await client.get(f"/jobs/events/?ids={job}")).text)
    assert [e for e, _ in events] == ["done", "end"]


async def test_other_sessions_jobs_are_gone_like_unknown_ones(client):
    job = await start_report(client, steps=1)
    async with browser() as stranger:
        answer = await stranger.get(f"/jobs/events/?ids={job},{'0' * 32},bad..id")
    events = parse_events(answer.text)
    assert events == [
        ("gone", {"id": job}),
        ("gone", {"id": "0" * 32}),
        ("gone", {"id": "bad..id"}),
        ("end", {"reason": "finished"}),
    ]
    nothing = parse_events((await client.get("/jobs/events/?ids=")).text)
    assert nothing == [("end", {"reason": "finished"})]


async def test_cancel_a_queued_and_a_running_report(client, worker_process):
    queued = await start_report(client, steps=3)
    answer = await client.post(f"/jobs/{queued}/cancel/")
    assert answer.status_code == 202
    assert answer.json() == {"id": queued, "cancelled": True}
    body = (await client.get(f"/jobs/{queued}/")).json()
    assert body["status"] == "FAILED"
    assert body["error"]["type"] == "jobs.exceptions.JobCancelled"
    again = await client.post(f"/jobs/{queued}/cancel/")
    assert again.status_code == 409

    worker_process("--queues", "reports")
    running = await start_report(client, steps=50, delay=0.2)
    while (await client.get(f"/jobs/{running}/")).json()["progress"] is None:
        await asyncio.sleep(0.05)
    assert (await client.post(f"/jobs/{running}/cancel/")).status_code == 202
    events = parse_events((await client.get(f"/jobs/events/?ids={running}")).text)
    final = events[-2][1]
    assert final["status"] == "FAILED"
    assert final["error"]["message"] == "The job was cancelled while it ran."
    assert final["progress"]["done"] < 50


async def test_cancel_needs_the_session_and_the_csrf_token(client):
    job = await start_report(client, steps=1)
    async with browser() as stranger:
        theirs = await stranger.post(f"/jobs/{job}/cancel/")
        unknown = await stranger.post(f"/jobs/{'0' * 32}/cancel/")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    del client.headers["X-CSRFToken"]
    assert (await client.post(f"/jobs/{job}/cancel/")).status_code == 403
    assert (await client.get(f"/jobs/{job}/cancel/")).status_code == 405
