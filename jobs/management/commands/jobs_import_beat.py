"""`python manage.py jobs_import_beat`: the periodic tasks of django-celery-beat
(jobs.schedules.beat) or of django-celery, `djcelery` (jobs.schedules.celerytables),
as Schedule rows. Re-running updates what changed."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections, transaction

from jobs.schedules.beat import Outcome
from jobs.schedules.celerytables import (
    BEAT,
    DJCELERY,
    MARKERS,
    celery_zone,
    import_tables,
    schemas_present,
)

VERBS = {"create": "created", "update": "updated", "unchanged": "unchanged"}


class Command(BaseCommand):
    help = (
        "Create a Schedule for each PeriodicTask row of django-celery-beat's or "
        "django-celery's (djcelery's) tables (crontab, interval and clocked "
        "schedules); report what cannot be."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--database",
            default="default",
            help="The alias of the database with the Celery scheduler's tables "
            "(the Celery project's); Schedules go to the default one.",
        )
        parser.add_argument(
            "--schema",
            choices=[DJCELERY, BEAT],
            help="Whose tables to read: djcelery's (djcelery_periodictask, ...: "
            "django-celery, Celery 3) or django-celery-beat's "
            "(django_celery_beat_periodictask, ...). Default: the one the "
            "database has.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print what would be done; change nothing.",
        )

    def handle(
        self,
        *args: Any,
        database: str,
        dry_run: bool,
        schema: str | None,
        **options: Any,
    ) -> None:
        if database not in connections:
            raise CommandError(f"No database alias {database!r} in DATABASES.")
        schema = schema or self.detect(database)
        self.stdout.write(self.header(database, schema))
        try:
            with transaction.atomic():
                outcomes = import_tables(database, schema, dry_run)
        except DatabaseError as e:
            raise CommandError(
                f"{schema}'s tables could not be read on {database!r}: {e}"
            ) from e
        for outcome in outcomes:
            self.stdout.write(self.line(outcome, dry_run))
        self.stdout.write(self.summary(outcomes, dry_run))

    @staticmethod
    def detect(database: str) -> str:
        """The one schema the database has; which to pass, when not one."""
        try:
            present = schemas_present(database)
        except DatabaseError as e:
            raise CommandError(f"Database {database!r} could not be read: {e}") from e
        if len(present) == 1:
            return present[0]
        tables = " and ".join(f"{s}'s ({MARKERS[s]})" for s in MARKERS)
        if present:
            raise CommandError(
                f"Database {database!r} has both {tables} tables: say which to "
                f"import with --schema {DJCELERY} or --schema {BEAT}."
            )
        raise CommandError(
            f"Database {database!r} has neither {tables.replace(' and ', ' nor ')} "
            "tables: name the Celery project's database with --database ALIAS "
            "(an alias in DATABASES)."
        )

    @staticmethod
    def header(database: str, schema: str) -> str:
        text = f"reading {schema}'s tables on {database!r}"
        if schema == DJCELERY:
            zone, setting = celery_zone()
            text += (
                f"; djcelery's crontabs have no timezone: read in {zone} ({setting}),"
                f" as djcelery ran them; naive expires times too"
            )
        return text

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
