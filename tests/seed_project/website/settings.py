# The article's first part: the project "website" (website/celery.py's
# DJANGO_SETTINGS_MODULE), whose __init__.py imports the Celery app module as
# Celery's Django layout does, so the app's @app.task and app.conf.update()
# run while Django reads these settings. The article shows no settings for
# this part: the test suite's.
from settings.test import *  # noqa
