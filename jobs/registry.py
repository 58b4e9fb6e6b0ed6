"""The registered tasks: the only code a worker will run.

A task registers itself when its module is imported (`JobsTask.__post_init__`);
`autodiscover()` imports every installed app's `tasks` module and the backends'
IMPORTS, as Celery's `autodiscover_tasks()` did. A job names a task by its module
path and is looked up here: nothing is ever imported because Redis said so.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.apps import AppConfig, apps
from django.utils.module_loading import autodiscover_modules

from jobs.exceptions import TaskNotRegistered

if TYPE_CHECKING:
    from jobs.task import JobsTask

_tasks: dict[str, JobsTask] = {}


def register(task: JobsTask) -> None:
    """Record `task` under its module path (copies made by using() are ignored)."""
    known = _tasks.get(task.module_path)
    if known is None or known.func is not task.func:
        _tasks[task.module_path] = task


def autodiscover() -> None:
    """Import each installed app's tasks module and every backend's IMPORTS."""
    from importlib import import_module

    autodiscover_modules("tasks")
    for module in extra_modules():
        import_module(module)


def extra_modules() -> list[str]:
    from django.conf import settings

    modules: list[str] = []
    for params in getattr(settings, "TASKS", {}).values():
        modules.extend(params.get("OPTIONS", {}).get("IMPORTS", ()))
    return modules


def discoverable(module: str) -> bool:
    """Whether a worker imports `module` when it autodiscovers tasks.

    Workers load every app of settings.INSTALLED_APPS. This process's app
    registry may hold fewer (a TransactionTestCase with `available_apps`
    narrows it), so an app counts if either has it. Before the registry is
    ready (a task made while settings load: Celery's app module imported by
    the settings package's __init__.py), settings alone say.
    """
    names = (
        [config.name for config in apps.get_app_configs()] if apps.apps_ready else []
    )
    if _under(module, names, extra_modules()):
        return True
    return _under(module, [app_name(entry) for entry in installed_apps()], [])


def _under(module: str, app_names: list[str], modules: list[str]) -> bool:
    roots = [f"{name}.tasks" for name in app_names] + modules
    return any(module == root or module.startswith(root + ".") for root in roots)


def installed_apps() -> list[str]:
    from django.conf import settings

    return list(settings.INSTALLED_APPS)


@cache
def app_name(entry: str) -> str:
    """The app name of an INSTALLED_APPS entry (a module or an AppConfig path)."""
    return AppConfig.create(entry).name


def get(path: str) -> JobsTask:
    """Return the registered task at `path`, or raise TaskNotRegistered."""
    try:
        return _tasks[path]
    except KeyError:
        raise TaskNotRegistered(
            f"{path!r} is not a registered task. Tasks are functions decorated with "
            "@task in an installed app's tasks.py (or a module in OPTIONS['IMPORTS'])."
        ) from None


def all_tasks() -> dict[str, JobsTask]:
    """Return the registered tasks by module path."""
    return dict(_tasks)
