"""The seed's Celery project (tests/seed_project: the article's code, only its
imports changed to jobs.celery) runs against a real `jobs_worker` process:
`add.delay(2, 3)`, `result.ready()`, `result.get(timeout=1)`,
`result.traceback`, `@app.task(bind=True)` with `self.request`, and both of
its CELERYBEAT_SCHEDULE dicts (app.conf.update and settings.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.servers import ROOT, wait_until, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_seed_runs_with_a_real_worker(seed, worker_process):
    worker = worker_process(**seed)
    from deploy.tasks import add  # the seed's own modules, imported as its views do
    from deploy.views import post
    from testapp.views import index
    from website import celery_app
    from website.celery import debug_task

    assert add.delay(1, 1).get(timeout=30) == 2  # the worker is up
    # The seed's view, then what the article does with its result:
    result = post(request=None)
    assert result.get(timeout=1) == 5
    assert result.ready() and result.traceback is None
    failing = add.delay(2, "x")
    with pytest.raises(TypeError, match="unsupported operand"):
        failing.get(timeout=10)  # "re-raises the task's exception"
    assert failing.ready() and failing.state == "FAILURE"
    assert "Traceback (most recent call last)" in failing.traceback
    assert "return x + y" in failing.traceback  # the original traceback
    assert index(request=None).status_code == 200

    bound = debug_task.delay()
    assert bound.get(timeout=10) is None
    wait_until(lambda: f"Request: Request(id='{bound.id}'" in worker.output())
    assert celery_app.main == "website"
    # The worker runs both beat schedules: the app's and settings'.
    wait_until(lambda: "schedules: 4 from settings and code" in worker.output())


def schedules_read(env: dict[str, str], first: str = "") -> str:
    """What a worker's scheduler reads in a process with `env`, after the
    `first` statement: the entries (name, task) and the problems."""
    code = (
        f"{first}from jobs.conf import jobs_settings as s;"
        "from jobs.schedules.static import static_entries as e;"
        "entries, problems = e(s.SCHEDULES);"
        "print(sorted((x.name, x.task) for x in entries), problems)"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


APP_SCHEDULES = [
    ("send-report", "deploy.tasks.report"),
    ("sum-task", "deploy.tasks.add"),
]


def test_the_seed_schedules_are_read(seed):
    """Both beat schedules of the article, as `manage.py check` and a worker
    read them (its sum-task every 20 s: fired by the worker in
    tests/acceptance/test_schedules.py's way, not waited for here)."""
    read = schedules_read(worker_env(**seed), first="import website.celery;")
    settings_schedules = [
        ("testapp-1", "testapp.tasks.welcome"),
        ("testapp-2", "testapp.tasks.welcome"),
    ]
    assert read == f"{APP_SCHEDULES + settings_schedules} []"


def test_a_job_waiting_to_retry_is_retry_then_revoked(worker_process):
    from tests.celery_tasks import succeeds_on_third

    worker_process()
    waiting = succeeds_on_third.delay("test:retry-state", countdown=60)
    wait_until(lambda: waiting.state == "RETRY", what="the first attempt's retry")
    assert not waiting.ready() and waiting.traceback is not None
    waiting.revoke()
    assert waiting.state == "REVOKED" and waiting.ready()


def test_the_app_module_imported_by_the_settings_package_keeps_its_schedule(seed):
    """Celery's own Django layout, the article's first part: settings in
    website.settings, so website/__init__.py imports the app module (its
    @app.task, its app.conf.update()) while Django is reading the settings.
    Before: every manage.py command died of AppRegistryNotReady at the task;
    past that, the app's schedule was lost when Django built its settings anew
    (the worker ran 0 schedules, nothing said so)."""
    env = {**worker_env(**seed), "DJANGO_SETTINGS_MODULE": "website.settings"}
    assert schedules_read(env) == f"{APP_SCHEDULES} []"
