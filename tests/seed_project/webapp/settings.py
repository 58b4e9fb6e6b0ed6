# The test suite's settings (not in the article), then the article's settings.py
# lines for django-celery's scheduler (its project is "webapp", the first
# part's is "website").
from settings.test import *  # noqa

from datetime import timedelta
from jobs.celery import crontab  # was: from celery.schedules import crontab

CELERYBEAT_SCHEDULE = {
    'testapp-1': {
        'task': 'testapp.tasks.welcome',
        'schedule': timedelta(seconds=20)
    },
    'testapp-2': {
        'task': 'testapp.tasks.welcome',
        'schedule': crontab(hour=17, minute=30),
    }
}
