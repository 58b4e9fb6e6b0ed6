from __future__ import annotations

import pytest
from django.tasks.exceptions import InvalidTaskBackend

from jobs.conf import JobsOptions, redact


def test_defaults():
    options = JobsOptions.from_options({})
    assert options.redis_url == "redis://localhost:6379/0"
    assert options.results_cache is None
    assert options.max_payload == 256 * 1024
    assert options.lease_ms == 30_000


def test_parses_known_options():
    options = JobsOptions.from_options(
        {
            "REDIS_URL": "rediss://u:p@h:6380/2",
            "LEASE": 5,
            "IMPORTS": ["a.b"],
            "TIMEOUT": 3,
        }
    )
    assert options.lease == 5
    assert options.imports == ("a.b",)
    assert options.timeout == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"REDIS_URL": "http://localhost"}, "must start with redis://"),
        ({"REDIS_URL": "localhost:6379"}, "must start with redis://"),
        ({"REDIS_URLS": "redis://x"}, "Unknown OPTIONS \\['REDIS_URLS'\\]"),
        ({"LEASE": 0}, "LEASE must be positive"),
        ({"MAX_ATTEMPTS": -1}, "MAX_ATTEMPTS must be positive"),
        ({"TIMEOUT": 0}, "TIMEOUT must be positive"),
        ({"POLL_INTERVAL": 0}, "POLL_INTERVAL must be positive"),
        ({"MAX_PAYLOAD": 2000, "MAX_RESULT": 1000}, "MAX_RESULT \\(1000\\) must be at"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options, message):
    with pytest.raises(InvalidTaskBackend, match=message):
        JobsOptions.from_options(options)


def test_redact_hides_the_password_only():
    assert redact("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


def test_bad_url_message_does_not_leak_password():
    with pytest.raises(InvalidTaskBackend) as excinfo:
        JobsOptions.from_options({"REDIS_URL": "http://user:s3cret@host"})
    assert "s3cret" not in str(excinfo.value)
