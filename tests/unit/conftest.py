"""The unit tier needs no server: TASKS points at a port nothing listens on,
so a test that reaches for Redis fails loudly instead of finding one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from tests.servers import free_port, settings_for

CLOSED = f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture(autouse=True)
def _no_redis() -> Iterator[None]:
    with override_settings(**settings_for(CLOSED)):
        yield
