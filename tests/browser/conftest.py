"""A real browser (Debian's chromium, driven by Playwright) against a real ASGI
server (uvicorn) and real worker processes.

Playwright's sync API keeps an event loop running in its thread, which Django's
ORM and pytest-asyncio refuse, so these tests use its async API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.redis_fixtures import *  # noqa: F403
from tests.servers import ROOT, free_port, worker_env

CHROMIUM = os.environ.get("JOBS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "img"


@pytest.fixture(scope="module")
def asgi_server(django_db_setup, test_redis, tmp_path_factory) -> Iterator[str]:
    """uvicorn serving webproject on a free port, on the test database and Redis."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    env = worker_env(DJANGO_SERVE_STATIC="1")  # the admin's CSS, for screenshots
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "webproject.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--lifespan",
                "off",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/admin/login/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"uvicorn did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
async def page() -> AsyncIterator[object]:
    """A page in a fresh chromium profile; fails (never skips) without chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(apt-get install chromium; .ci/run installs it)."
        )
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=20_000)  # jobs take seconds, not the default 5

    profile = tempfile.mkdtemp(prefix="jobs-chromium-")
    try:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
            )
            context.set_default_timeout(20_000)
            try:
                yield context.pages[0] if context.pages else await context.new_page()
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def screenshot(page, name: str, tmp_path: Path) -> Path:
    """Save a full-page PNG; into docs/img/ too with JOBS_UPDATE_SCREENSHOTS=1."""
    path = tmp_path / name
    await page.screenshot(path=str(path), full_page=True)
    if os.environ.get("JOBS_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)
    return path
