"""The suite's own servers leave nothing behind in the temporary directory."""

from __future__ import annotations

import os
import signal

from tests.servers import RedisServer, free_port


def test_a_test_redis_server_removes_its_directory():
    elsewhere = RedisServer(free_port())  # stands for JOBS_TEST_REDIS_URL's
    assert elsewhere.dir is None  # never started: nothing made
    elsewhere.remove()
    server = RedisServer(free_port(), ["--appendonly", "yes"])
    server.start()
    made = server.dir
    assert made is not None and os.path.isdir(made)
    server.stop(signal.SIGKILL)
    server.start()  # a restart keeps its data, in the same directory
    assert server.dir == made
    server.remove(signal.SIGKILL)
    assert not os.path.exists(made)
