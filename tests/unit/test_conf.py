from __future__ import annotations

import pytest
from django.tasks.exceptions import InvalidTaskBackend

from jobs.checks import redis_database
from jobs.conf import JobsOptions, SentinelAddress, redact
from jobs.redis.sentinel import SentinelPool


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
        ({"WAIT_REPLICAS": -1}, "WAIT_REPLICAS must be 0 or more"),
        ({"WAIT_TIMEOUT": 0}, "WAIT_TIMEOUT positive"),
        ({"REDIS_URL": "redis+sentinel://h:26379"}, "give the master's name"),
        ({"REDIS_URL": "redis+sentinel://h:26379/m/x"}, "the db must be a number"),
        ({"REDIS_URL": "redis+sentinel://h:26379/m/0/1"}, "give the master's name"),
        ({"REDIS_URL": "redis+sentinel://h:port/m"}, "'h:port' is not host:port"),
        ({"REDIS_URL": "redis+sentinel://a:1,/m"}, "'' is not host:port"),
        (
            {"REDIS_OPTIONS": {"sentinel_kwargs": {"password": "x"}}},
            "'sentinel_kwargs'\\] is for a redis\\+sentinel",
        ),
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


def test_a_sentinel_url_names_sentinels_master_db_and_acl():
    options = JobsOptions.from_options(
        {"REDIS_URL": "redis+sentinel://app:p%40ss@h1:26380,h2,[::1]:26381/main/3"}
    )
    assert options.sentinel == SentinelAddress(
        sentinels=(("h1", 26380), ("h2", 26379), ("::1", 26381)),
        service="main",
        db=3,
        username="app",
        password="p@ss",
    )
    assert JobsOptions.from_options({}).sentinel is None


def test_a_sentinel_url_defaults_to_db_0_without_acl():
    address = SentinelAddress.parse("redis+sentinel://127.0.0.1:26379/jobs")
    assert (address.db, address.username, address.password) == (0, None, None)


def test_a_bad_sentinel_url_message_does_not_leak_password():
    with pytest.raises(InvalidTaskBackend) as excinfo:
        JobsOptions.from_options({"REDIS_URL": "redis+sentinel://u:s3cret@h:1/m/x"})
    assert "s3cret" not in str(excinfo.value)
    assert "redis+sentinel://[user:password@]host:26379" in str(excinfo.value)


def test_sentinel_kwargs_reach_the_sentinels_and_the_url_the_master():
    pool = SentinelPool.from_url(
        "redis+sentinel://app:pw@127.0.0.1:1,127.0.0.1:2/main/4",
        socket_timeout=3,
        sentinel_kwargs={"password": "sentinels-only"},
    )
    master = pool.connection_kwargs
    assert (master["db"], master["username"], master["password"]) == (4, "app", "pw")
    assert "sentinel_kwargs" not in master
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [1, 2]
    assert (
        sentinels[0].connection_pool.connection_kwargs["password"] == "sentinels-only"
    )
    assert pool.service_name == "main"


@pytest.mark.parametrize(
    ("url", "other", "same"),
    [
        ("redis://localhost:6379/0", "redis://127.0.0.1?db=0", True),
        ("redis://h:6379/0", "redis://u:p@H:6379/0", True),  # the ACL user aside
        ("redis://h:6379/0", "redis://h:6379/1", False),
        ("redis://h:6379/0", "redis://h:6380/0", False),
        ("unix:///run/r.sock?db=2", "unix:///run/r.sock?db=2", True),
        ("redis+sentinel://a:1,b:2/m/3", "redis+sentinel://B:2,a:1/m/3", True),
        ("redis+sentinel://a:1/m/3", "redis+sentinel://a:1/m/4", False),
        ("redis+sentinel://a:1/m/3", "redis+sentinel://a:1/n/3", False),
    ],
)
def test_redis_database_names_one_database_however_spelled(url, other, same):
    first, second = (JobsOptions.from_options({"REDIS_URL": u}) for u in (url, other))
    assert (redis_database(first) == redis_database(second)) is same
