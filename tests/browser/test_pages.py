"""Click through the demo page and the admin dashboard in chromium."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import expect

from tests.browser.conftest import screenshot
from webproject import tasks as demo

pytestmark = pytest.mark.django_db(transaction=True)

BAR_MOVING = """() => [...document.querySelectorAll('tr[data-job] .bar')].some(b => {
  const done = Number(b.getAttribute('aria-valuenow'));
  return done > 0 && done < Number(b.getAttribute('aria-valuemax'));
})"""


async def test_a_report_progress_bar_advances_live_to_the_end(
    page, asgi_server, worker_process, tmp_path
):
    worker_process("--queues", "reports,default")
    await page.goto(asgi_server + "/")
    await page.get_by_role("button", name="report (10 steps, 5 s)").click()
    row = page.locator("tr[data-job]").first
    await expect(row.locator(".status")).to_have_text("RUNNING")
    await page.wait_for_function(BAR_MOVING)  # seen between the start and the end
    await expect(page.locator("#transport")).to_contain_text("server-sent events")
    await expect(row.locator(".status")).to_have_text("SUCCESSFUL")
    bar = row.locator(".bar")
    await expect(bar).to_have_attribute("aria-valuenow", "10")
    await expect(bar).to_have_attribute("aria-valuemax", "10")
    await expect(row.locator(".fill")).to_have_attribute("style", "width: 100%;")
    await expect(row.locator(".message")).to_have_text("step 10 of 10")
    await expect(row.locator(".out")).to_contain_text('"steps":10')
    await expect(row.locator(".cancel")).to_have_count(0)


async def test_several_at_once_one_cancelled_one_failing(
    page, asgi_server, worker_process, tmp_path
):
    worker_process("--queues", "reports,default")
    await page.goto(asgi_server + "/")
    await page.get_by_role("button", name="3 reports at once").click()
    await page.get_by_role("button", name="a report that fails").click()
    rows = page.locator("tr[data-job]")
    await expect(rows).to_have_count(4)
    await page.wait_for_function(BAR_MOVING)
    # Rows appear as each POST answers, so find them by label, not by place.
    failing = rows.filter(has_text="fails at 6")
    victim = rows.filter(has_not_text="fails at 6").nth(1)  # one of the three
    await victim.locator(".cancel").click()
    finished = page.locator("tr[data-finished=true]")
    await expect(finished).to_have_count(4)
    statuses = await rows.locator(".status").all_inner_texts()
    assert sorted(statuses) == ["FAILED", "FAILED", "SUCCESSFUL", "SUCCESSFUL"]
    await expect(victim.locator(".out")).to_contain_text(
        "jobs.exceptions.JobCancelled: The job was cancelled while it ran."
    )
    await expect(failing.locator(".out")).to_contain_text("RuntimeError")
    await expect(failing.locator(".out pre")).to_contain_text(
        "Traceback (most recent call last)"
    )
    await expect(failing.locator(".bar")).to_have_attribute("aria-valuenow", "5")
    path = await screenshot(page, "demo.png", tmp_path)
    assert path.read_bytes().startswith(b"\x89PNG")


async def test_polling_when_there_is_no_stream(page, asgi_server, worker_process):
    worker_process("--queues", "reports,default")
    await page.goto(asgi_server + "/?transport=poll")
    await page.get_by_role("button", name="add(2, 3)").click()
    row = page.locator("tr[data-job]").first
    await expect(row.locator(".status")).to_have_text("SUCCESSFUL")
    await expect(row.locator(".out")).to_have_text("5")
    await expect(page.locator("#transport")).to_have_text("following jobs by polling")


async def log_in(page, asgi_server: str, django_user_model) -> None:
    await django_user_model.objects.acreate_superuser("admin", "a@example.com", "pw")
    await page.goto(asgi_server + "/admin/")
    await page.fill("#id_username", "admin")
    await page.fill("#id_password", "pw")
    await page.click("input[type=submit]")
    await expect(page.get_by_role("link", name="Dashboard")).to_be_visible()


async def test_the_admin_dashboard(
    page, asgi_server, worker_process, django_user_model, tmp_path
):
    from jobs.models import Schedule

    # One step: its "Run now" below starts a job the worker's stop waits for.
    await Schedule.objects.acreate(
        name="nightly report",
        task="webproject.tasks.report",
        cron="30 3 * * *",
        kwargs={"steps": 1},
    )
    worker = worker_process("--queues", "reports,default", "--no-schedules")
    done = [await demo.add.aenqueue(x, 2) for x in range(3)]
    failed = await demo.fail.aenqueue("the dashboard shows this error")
    later = await demo.add.using(run_after=timedelta(hours=2)).aenqueue(40, 2)
    await log_in(page, asgi_server, django_user_model)
    await page.get_by_role("link", name="Dashboard").first.click()
    await expect(page.locator("h1")).to_have_text("Jobs dashboard")
    await expect(page.locator("#jobs-workers")).to_contain_text("1 alive")
    recent = page.locator("#jobs-recent")
    for job in (*done, failed):
        await expect(recent.locator(f"tr[data-job='{job.id}']")).to_be_visible()
    await expect(recent).to_contain_text("ValueError: the dashboard shows this error")
    await expect(page.locator("#jobs-schedules")).to_contain_text("nightly report")
    await expect(page.locator("#jobs-schedules")).to_contain_text("03:30:00")

    # The page refreshes itself: a job started now appears without a reload.
    running = await demo.report.using().aenqueue(steps=40, delay=0.5)
    await expect(
        page.locator(f"#jobs-running tr[data-job='{running.id}'] progress")
    ).to_be_visible()
    await screenshot(page, "dashboard.png", tmp_path)
    await page.uncheck("#jobs-autorefresh")  # no refresh between a look and a click

    queued = page.locator(f"#jobs-queued tr[data-job='{later.id}']")
    await queued.get_by_role("button", name="Cancel").click()
    await expect(page.locator(".messagelist")).to_contain_text(
        f"Cancelled job {later.id} before it ran."
    )
    await (
        page.locator(f"#jobs-running tr[data-job='{running.id}']")
        .get_by_role("button", name="Cancel")
        .click()
    )
    await expect(page.locator(".messagelist")).to_contain_text(
        f"Asked the worker to cancel running job {running.id}."
    )
    await (
        page.locator(f"#jobs-recent tr[data-job='{failed.id}']")
        .get_by_role("button", name="Retry")
        .click()
    )
    await expect(page.locator(".messagelist")).to_contain_text(
        f"to retry job {failed.id}"
    )
    await page.locator("#jobs-schedules").get_by_role("button", name="Run now").click()
    await expect(page.locator(".messagelist")).to_contain_text(
        "for schedule 'nightly report'"
    )
    await page.reload()
    cancelled = page.locator(f"#jobs-recent tr[data-job='{running.id}']")
    await expect(cancelled).to_contain_text("JobCancelled")
    assert worker.proc.poll() is None
