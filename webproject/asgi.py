"""ASGI entry point: `uvicorn webproject.asgi:application`."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

application = get_asgi_application()

from django.conf import settings  # noqa: E402 - after the app registry is ready

if settings.DEBUG:
    # Development only: serve the admin's static files without collectstatic.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)  # type: ignore[assignment]
