"""Load Django's adapted test classes (see source.py) for the test modules here."""

from __future__ import annotations

import importlib
import unittest

from django.conf import settings
from django.test import override_settings

from tests.django_suite import source


def tasks_app() -> override_settings:
    """Install Django's `tasks` test package as an app.

    JobsBackend accepts only tasks that its workers import: an installed app's
    tasks.py (or a module in OPTIONS['IMPORTS'], which Django's tests do not set).
    """
    source.import_root()
    installed = list(settings.INSTALLED_APPS)
    if source.PACKAGE not in installed:
        installed.append(source.PACKAGE)
    return override_settings(INSTALLED_APPS=installed)


def load_classes() -> dict[str, type[unittest.TestCase]]:
    """Django's TestCase classes of every module in source.MODULES, by name."""
    classes: dict[str, type[unittest.TestCase]] = {}
    with tasks_app():  # tasks.py validates its tasks against the default backend
        for name in source.MODULES:
            module = importlib.import_module(f"{source.PACKAGE}.{name}")
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and issubclass(obj, unittest.TestCase)
                    and obj.__module__ == module.__name__
                ):
                    if obj.__name__ in classes:
                        raise source.SuiteUnavailable(f"Two classes {obj.__name__}.")
                    classes[obj.__name__] = obj
    return classes
