"""Which of Redis's run totals a schedule's run_count already includes, so that
writing a count is the same write however often a worker repeats it (see
jobs.schedules.counting). A database default, for rows inserted by SQL."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_dashboard_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="schedule",
            name="runs_counted",
            field=models.PositiveBigIntegerField(
                default=0, db_default=0, editable=False
            ),
        ),
        migrations.AddField(
            model_name="schedule",
            name="runs_epoch",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
    ]
