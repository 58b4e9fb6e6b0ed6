"""`python manage.py jobs_import_beat`: django-celery-beat's periodic tasks as
Schedule rows (jobs.schedules.beat). Re-running updates what changed."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections, transaction

from jobs.schedules.beat import Outcome, import_beat

VERBS = {"create": "created", "update": "updated", "unchanged": "unchanged"}


class Command(BaseCommand):
    help = (
        "Create a Schedule for each of django-celery-beat's PeriodicTask rows "
        "(crontab, interval and clocked schedules); report what cannot be."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--database",
            default="default",
            help="The alias of the database with django-celery-beat's tables "
            "(the Celery project's); Schedules go to the default one.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print what would be done; change nothing.",
        )

    def handle(self, *args: Any, database: str, dry_run: bool, **options: Any) -> None:
        if database not in connections:
            raise CommandError(f"No database alias {database!r} in DATABASES.")
        try:
            with transaction.atomic():
                outcomes = import_beat(database, dry_run)
        except DatabaseError as e:
            raise CommandError(
                f"django-celery-beat's tables could not be read on {database!r}: {e}"
            ) from e
        for outcome in outcomes:
            self.stdout.write(self.line(outcome, dry_run))
        self.stdout.write(self.summary(outcomes, dry_run))

    @staticmethod
    def line(outcome: Outcome, dry_run: bool) -> str:
        if outcome.action == "skip":
            text = f"skipped {outcome.name}: {outcome.detail}"
        else:
            verb = VERBS[outcome.action]
            if dry_run and outcome.action != "unchanged":
                verb = f"would be {verb}"
            text = f"{verb} {outcome.name}: {outcome.detail}"
        return "\n".join([text, *(f"  note: {note}" for note in outcome.notes)])

    @staticmethod
    def summary(outcomes: list[Outcome], dry_run: bool) -> str:
        counts = {a: sum(o.action == a for o in outcomes) for a in (*VERBS, "skip")}
        text = (
            f"{counts['create']} created, {counts['update']} updated, "
            f"{counts['unchanged']} unchanged, {counts['skip']} skipped"
        )
        return f"dry run, nothing written: {text}" if dry_run else text
