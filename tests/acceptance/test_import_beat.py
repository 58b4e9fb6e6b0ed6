"""manage.py jobs_import_beat against tables made by the real django-celery-beat
(rows created through its own models, in a throwaway virtualenv: the package
pins Django<6.1), read through a second database alias and fired by our worker."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from jobs.models import Schedule
from tests.servers import ROOT, wait_until, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

VENV = Path.home() / ".cache" / "django-jobs" / "celery-beat-venv"
UV = ROOT / ".tools" / "bin" / "uv"
REQUIREMENTS = ["Django>=6.0,<6.1", "django-celery-beat==2.9.0"]


def beat_python() -> Path:
    """The throwaway virtualenv's Python (made once, then cached). Made aside and
    moved into place once complete: a run stopped during the install (a timeout,
    a Ctrl-C) must not leave every later run a virtualenv without the package."""
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=VENV.parent, prefix=".build-") as scratch:
        build = Path(scratch) / "venv"
        built = build / "bin" / "python"
        subprocess.run(
            [UV, "venv", "-q", "--python", sys.executable, build], check=True
        )
        subprocess.run(
            [UV, "pip", "install", "-q", "--python", built, *REQUIREMENTS], check=True
        )
        try:
            build.rename(VENV)
        except OSError:  # another session's finished first
            if not python.exists():
                raise
    return python


@pytest.fixture(scope="module")
def beat_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("beat") / "celery.sqlite3"
    script = Path(__file__).resolve().parents[1] / "beat_tables.py"
    subprocess.run([beat_python(), script, path], check=True, capture_output=True)
    return path


def import_command(db: Path, **env: str) -> Callable[..., str]:
    """Run `manage.py jobs_import_beat ARGS` with the Celery project's database
    `db` as the alias "celery" (and `env`); its output (a failure raises with
    its stderr)."""

    def run(*args: str, check: bool = True) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "jobs_import_beat", *args],
            cwd=ROOT,
            env=worker_env(
                DJANGO_SETTINGS_MODULE="tests.beat_settings",
                JOBS_TEST_BEAT_DB=str(db),
                **env,
            ),
            capture_output=True,
            text=True,
        )
        if check and done.returncode:
            raise AssertionError(done.stderr)
        return done.stdout + done.stderr

    return run


@pytest.fixture
def command(beat_db: Path) -> Callable[..., str]:
    return import_command(beat_db)


def test_dry_run_reports_everything_and_writes_nothing(command):
    out = command("--database", "celery", "--dry-run")
    assert out.splitlines()[0] == "reading django-celery-beat's tables on 'celery'"
    assert Schedule.objects.count() == 0
    assert "would be created send-report: At 04:30, only on Monday" in out
    assert "skipped at-sunset: solar schedule (sunset at 31.2, 121.5)" in out
    assert "skipped gone: " in out and "proj.tasks.removed" in out
    assert "skipped bad-args: " in out
    assert "skipped celery.backend_cleanup: " in out
    assert "note: expire_seconds=15 not imported" in out
    assert "note: priority=5 not imported" in out
    assert out.splitlines()[-1] == (
        "dry run, nothing written: 4 created, 0 updated, 0 unchanged, 4 skipped"
    )


def test_import_maps_each_schedule_kind_and_is_idempotent(command, worker_process):
    out = command("--database", "celery")
    assert out.splitlines()[-1] == "4 created, 0 updated, 0 unchanged, 4 skipped"
    report = Schedule.objects.get(name="send-report")
    assert (report.cron, report.timezone) == ("30 4 * * 1", "Asia/Shanghai")
    assert (report.args, report.queue_name) == ([5, 6], "reports")
    assert report.expires == datetime(2031, 1, 1, tzinfo=UTC)
    assert report.description == "weekly" and report.enabled
    sums = Schedule.objects.get(name="sum-task")
    assert sums.interval == timedelta(seconds=20) and sums.kwargs == {"x": 1, "y": 2}
    later = Schedule.objects.get(name="later")
    assert later.interval == timedelta(days=1) and not later.enabled
    assert later.start_time == datetime(2029, 6, 1, 12, tzinfo=UTC)
    once = Schedule.objects.get(name="once")
    assert once.clocked_time == datetime(2030, 1, 2, 3, 4, tzinfo=UTC) and once.one_off
    again = command("--database", "celery")
    assert again.splitlines()[-1] == "0 created, 0 updated, 4 unchanged, 4 skipped"
    assert Schedule.objects.count() == 4
    Schedule.objects.filter(name="sum-task").update(args=[9, 9])
    assert "1 updated, 3 unchanged" in command("--database", "celery")
    # Our worker fires the imported interval schedule (every 20 s). Its runs
    # count from the row's creation: dated 14 s back, the first is due in about
    # 6 s, not 20 (a worker slower to start takes the next one, 20 s later).
    created = timezone.now() - timedelta(seconds=14)
    Schedule.objects.filter(name="sum-task").update(created_at=created)
    worker_process()
    wait_until(
        lambda: Schedule.objects.get(name="sum-task").run_count >= 1,
        timeout=60,
        what="sum-task's first run",
    )


def test_a_database_without_the_tables_is_a_clear_error(command):
    out = command(check=False)
    assert "nor django-celery-beat's (django_celery_beat_periodictask) tables" in out
    assert "No database alias 'nope'" in command("--database", "nope", check=False)
