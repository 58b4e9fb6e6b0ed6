"""Local development: DEBUG on, a throwaway secret key."""

from __future__ import annotations

import os

from settings.base import *  # noqa: F403
from settings.base import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "dev-only-not-secret-3b1e6a0f8c2d4e5f9a7b"
)
