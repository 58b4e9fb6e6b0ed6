from __future__ import absolute_import
from jobs.celery import shared_task  # was: from celery import shared_task

@shared_task
def add(x, y):
    return x + y


@shared_task
def report():  # not in the article, which schedules it without showing it
    return "report"
