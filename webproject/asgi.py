"""ASGI entry point: `uvicorn webproject.asgi:application`."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

application = get_asgi_application()

from django.conf import settings  # noqa: E402 - after the app registry is ready

if settings.DEBUG or os.environ.get("DJANGO_SERVE_STATIC") == "1":
    # The admin's static files without collectstatic or a separate file server:
    # fine for development and the compose demo, not for heavy traffic.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
