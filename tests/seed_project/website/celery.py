from __future__ import absolute_import, unicode_literals
import os
from jobs.celery import Celery, platforms  # was: from celery import Celery, platforms

# set the default Django settings module for the 'celery' program.
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'website.settings')

# 配置rabbitmq，注意地址
app = Celery('website', backend='amqp', broker='amqp://admin:admin@localhost')

# Using a string here means the worker don't have to serialize
# the configuration object to child processes.
# - namespace='CELERY' means all celery-related configuration keys
#   should have a `CELERY_` prefix.
app.config_from_object('django.conf:settings', namespace='CELERY')

# Load task modules from all registered Django app configs.
app.autodiscover_tasks()

# 允许root 用户运行celery
platforms.C_FORCE_ROOT = True

# 防止长期运行内存泄露
CELERYD_MAX_TASKS_PER_CHILD = 10

@app.task(bind=True)
def debug_task(self):
    print('Request: {0!r}'.format(self.request))


# website/celery.py, second part of the article ("定时任务"); the article's dict
# lacks the comma after 'sum-task''s entry (a SyntaxError as printed): added.
from jobs.celery import crontab  # was: from celery.schedules import crontab
from datetime import timedelta

app.conf.update(
    CELERYBEAT_SCHEDULE = {
        'sum-task': {
            'task': 'deploy.tasks.add',
            'schedule':  timedelta(seconds=20),
            'args': (5, 6)
        },
        'send-report': {
            'task': 'deploy.tasks.report',
            'schedule': crontab(hour=4, minute=30, day_of_week=1),
        }
    }
)
