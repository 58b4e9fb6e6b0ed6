"""Django's own tests of the Tasks framework, taken from the installed Django's sdist.

Django's sdist on PyPI ships its test suite. `tests/tasks/` of the sdist of the
installed version is copied out once into a cache outside the repository
($XDG_CACHE_HOME, by default ~/.cache, under django-jobs/) and never committed.
It is then adapted by backend names only: RENAMES below is the whole adaptation,
every assertion stays as Django wrote it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import django

PYPI = "https://pypi.org/pypi/Django"
PACKAGE = "tasks"  # Django's tests import it as `tasks` (test_module_path checks)
MODULES = (
    "test_custom_backend",
    "test_dummy_backend",
    "test_immediate_backend",
    "test_tasks",
)
# Django's in-memory backends -> their JobsBackend stand-ins (tests/django_suite/backends.py).
RENAMES = (
    (r"\bdjango\.tasks\.backends\.(immediate|dummy)\b", "tests.django_suite.backends"),
    (r"\bImmediateBackend\b", "RunningBackend"),
    (r"\bDummyBackend\b", "QueuedBackend"),
)
# What must not survive the renames: a test still running Django's own backends.
LEFTOVER = re.compile(
    r"django\.tasks\.backends\.(immediate|dummy)|\b(Immediate|Dummy)Backend\b"
)


class SuiteUnavailable(RuntimeError):
    """Django's tests could not be fetched or adapted."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "django-jobs" / f"django-{django.__version__}-tests"


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def sdist_file(version: str) -> tuple[str, str]:
    """The URL and sha256 of the sdist of Django `version`, as PyPI lists them."""
    document = f"{PYPI}/{version}/json"
    try:
        files = _get_json(document)["urls"]
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
        # Some PyPI mirrors serve only the project's document, with every release.
        document = f"{PYPI}/json"
        files = _get_json(document)["releases"].get(version, [])
    for entry in files:
        if entry["packagetype"] == "sdist":
            # Mirrors may give the URL relative to the document.
            return urljoin(document, entry["url"]), entry["digests"]["sha256"]
    raise SuiteUnavailable(f"PyPI has no sdist of Django {version}.")


def download(version: str) -> bytes:
    url, sha256 = sdist_file(version)
    with urllib.request.urlopen(url, timeout=300) as response:
        data: bytes = response.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SuiteUnavailable(f"{url} does not match PyPI's sha256.")
    return data


def extract(sdist: bytes, version: str, into: Path) -> None:
    """Write the sdist's tests/tasks/*.py into `into` (regular files only)."""
    prefix = f"django-{version}/tests/{PACKAGE}/"
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.removeprefix(prefix)
            if (
                member.isfile()
                and name != member.name
                and re.fullmatch(r"\w+\.py", name)
            ):
                source = archive.extractfile(member)
                assert source is not None
                (into / name).write_bytes(source.read())
    missing = [m for m in MODULES if not (into / f"{m}.py").exists()]
    if missing:
        raise SuiteUnavailable(f"Django {version}'s sdist lacks tests/tasks/{missing}.")


def _publish(build: Path, target: Path) -> None:
    """Move a finished directory into place; a concurrent run may have won."""
    try:
        build.rename(target)
    except OSError:
        if not target.is_dir():
            raise


def original() -> Path:
    """The directory of Django's tests/tasks, fetched on first use."""
    target = cache_root() / "original"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".fetch-"))
    try:
        extract(download(django.__version__), django.__version__, scratch / PACKAGE)
        _publish(scratch / PACKAGE, target)
    except (OSError, urllib.error.URLError, tarfile.TarError) as e:
        raise SuiteUnavailable(
            f"Could not fetch Django {django.__version__}'s tests from PyPI: {e}"
        ) from e
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def adapt(text: str, used: set[str]) -> str:
    for pattern, replacement in RENAMES:
        text, count = re.subn(pattern, replacement, text)
        if count:
            used.add(pattern)
    return text


def adapted() -> Path:
    """A directory holding the adapted `tasks` package (put it on sys.path)."""
    rules = hashlib.sha256(repr(RENAMES).encode()).hexdigest()[:12]
    root = cache_root() / f"adapted-{rules}"
    if (root / PACKAGE).is_dir():
        return root
    source = original()
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    try:
        (scratch / PACKAGE).mkdir()
        write_adapted(source, scratch / PACKAGE)
        _publish(scratch / PACKAGE, root / PACKAGE)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def write_adapted(source: Path, into: Path) -> None:
    used: set[str] = set()
    for path in sorted(source.glob("*.py")):
        text = adapt(path.read_text(), used)
        if leftover := LEFTOVER.search(text):
            raise SuiteUnavailable(f"{path.name} still names {leftover[0]!r}.")
        (into / path.name).write_text(text)
    unused = {pattern for pattern, _ in RENAMES} - used
    if unused:
        raise SuiteUnavailable(f"Renames that matched nothing: {sorted(unused)}.")


def import_root() -> Path:
    """Put the adapted package on sys.path (once) and return its directory."""
    root = adapted()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None and Path(loaded.__file__ or "").parent != root / PACKAGE:
        raise SuiteUnavailable(f"Another {PACKAGE!r} module is imported: {loaded!r}.")
    return root
