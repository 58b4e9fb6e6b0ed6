"""The example project end to end: async view -> Redis -> worker process -> status URL."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys

import httpx
import pytest
from django.test import override_settings

from tests.integration.test_enqueue import _dead_url, _tasks_at
from tests.servers import ROOT, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.asynccontextmanager
async def browser():
    """A client with its own cookies (session, CSRF), as one visitor's browser."""
    from webproject.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
        page = await c.get("/")
        assert page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        c.headers["X-CSRFToken"] = token.group(1)
        yield c


@pytest.fixture
async def client():
    async with browser() as c:
        yield c


async def follow(client: httpx.AsyncClient, url: str, timeout: float = 20) -> dict:
    """Poll a status URL as the demo page does, until the job is finished."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        body = (await client.get(url)).json()
        if body["status"] in ("SUCCESSFUL", "FAILED"):
            return body
        assert loop.time() < deadline, body
        await asyncio.sleep(0.05)


async def test_view_answers_202_at_once_and_the_worker_finishes_the_job(
    client, worker_process
):
    worker_process()
    answer = await client.post("/jobs/add/", json={"x": 2, "y": 3})
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "READY"
    assert body["status_url"].endswith(f"/jobs/{body['id']}/")
    assert answer.headers["Location"] == body["status_url"]
    done = await follow(client, body["status_url"])
    assert done["status"] == "SUCCESSFUL"
    assert done["result"] == 5
    assert done["attempts"] == 1
    assert done["task"] == "add"


async def test_failed_job_reports_its_error_and_traceback(client, worker_process):
    worker_process()
    answer = await client.post("/jobs/fail/")
    done = await follow(client, answer.json()["status_url"])
    assert done["status"] == "FAILED"
    assert done["error"]["type"] == "builtins.ValueError"
    assert done["error"]["message"] == "this job fails on purpose"
    assert "Traceback (most recent call last)" in done["error"]["traceback"]
    assert "result" not in done


async def test_long_report_runs_on_its_own_queue(client, worker_process):
    worker_process("--queues", "reports")
    answer = await client.post("/jobs/report/", json={"steps": 2})
    done = await follow(client, answer.json()["status_url"])
    assert done["status"] == "SUCCESSFUL"
    assert done["result"]["steps"] == 2


async def test_unknown_and_malformed_ids_are_404(client):
    assert (await client.get("/jobs/" + "0" * 32 + "/")).status_code == 404
    assert (await client.get("/jobs/not..valid/")).status_code == 404


async def test_state_changing_endpoints_need_the_csrf_token(client):
    del client.headers["X-CSRFToken"]
    answer = await client.post("/jobs/add/", json={"x": 1, "y": 1})
    assert answer.status_code == 403
    assert (await client.get("/jobs/add/")).status_code == 405


async def test_enqueue_while_redis_is_down_answers_503(client):
    with override_settings(TASKS=_tasks_at(_dead_url())):
        answer = await client.post("/jobs/add/", json={"x": 1, "y": 1})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert "not enqueued" in answer.json()["error"]


async def test_admin_is_on(client):
    answer = await client.get("/admin/login/")
    assert answer.status_code == 200
    assert "Django administration" in answer.text


async def test_another_session_gets_the_same_404_as_for_an_unknown_id(client):
    answer = await client.post("/jobs/add/", json={"x": 1, "y": 1})
    url = answer.json()["status_url"]
    assert (await client.get(url)).status_code == 200
    async with browser() as stranger:
        theirs = await stranger.get(url)
        unknown = await stranger.get("/jobs/" + "0" * 32 + "/")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        ("/jobs/add/", b'{"x": 1e400}', "1e400 is out of a float's range"),
        ("/jobs/add/", b'{"x": -Infinity}', "Infinity is not JSON"),
        ("/jobs/report/", b'{"steps": 1e400}', "out of a float's range"),
        ("/jobs/add/", b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
        ("/jobs/add/", b'{"x": "two"}', "x must be a finite number, not 'two'"),
        ("/jobs/add/", b'{"y": 1' + b"0" * 400 + b"}", "y must be a finite number"),
        ("/jobs/report/", b'{"delay": true}', "delay must be a finite number"),
        ("/jobs/add/", b"[1, 2]", "must be a JSON object"),
    ],
)
async def test_bad_bodies_answer_400_with_the_reason(client, url, body, message):
    answer = await client.post(
        url, content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert message in answer.json()["error"]


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        # curl -d '{"x": "a"}' without -H: one form field named after the JSON.
        (
            "application/x-www-form-urlencoded",
            b'{"x": "a"}',
            """Unknown parameters '{"x": "a"}': this takes x, y""",
        ),
        ("application/json", b'{"x": 1, "z": 2}', "Unknown parameters 'z'"),
        ("application/x-www-form-urlencoded", b"x=1&y=a", "y must be a finite number"),
    ],
)
async def test_parameters_that_are_not_x_and_y_answer_400(
    client, content_type, body, message
):
    answer = await client.post(
        "/jobs/add/", content=body, headers={"Content-Type": content_type}
    )
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]


async def test_the_failing_job_refuses_parameters_it_would_ignore(client):
    # Before: 202, and the job failed with its own message, not the one posted.
    answer = await client.post(
        "/jobs/fail/",
        content=b'{"message": "mine"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert "Unknown parameters 'message': this takes none" in answer.json()["error"]


def test_a_server_error_is_logged_with_debug_off():
    # settings.test runs with DEBUG off, as production does.
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').error('Internal Server Error: /x')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=worker_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ERROR   django.request Internal Server Error: /x" in done.stderr
