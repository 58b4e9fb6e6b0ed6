"""WAIT_REPLICAS: enqueue returns once replicas hold the job (Redis's WAIT)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from jobs import NotReplicated
from jobs.redis.keys import JOB_KEY_PREFIX
from tests import tasks
from tests.servers import settings_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def waiting(url: str, **options: object) -> dict[str, object]:
    config = settings_for(url)
    config["TASKS"]["default"]["OPTIONS"].update(WAIT_REPLICAS=1, **options)  # type: ignore[index]
    return config


@pytest.fixture
def replicated(own_redis):
    master = own_redis("--repl-diskless-sync-delay", "0")  # sync at once, not in 5 s
    replica = own_redis("--replicaof", "127.0.0.1", str(master.port))
    client = master.client()
    wait_until(
        lambda: client.info("replication").get("slave0", {}).get("state") == "online",
        what="the replica to sync",
    )
    client.close()
    return master, replica


async def test_enqueue_returns_once_a_replica_holds_the_job(replicated):
    master, replica = replicated
    with override_settings(**waiting(master.url)):
        master.client().script_flush()  # the NOSCRIPT path too
        done = [tasks.add.enqueue(1, 2), await tasks.add.aenqueue(3, 4)]
    held = replica.client()
    for result in done:
        assert held.exists(JOB_KEY_PREFIX + result.id)


async def test_too_few_replicas_raise_not_replicated(own_redis):
    alone = own_redis()
    with override_settings(**waiting(alone.url, WAIT_TIMEOUT=0.05)):
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            tasks.add.enqueue(1, 2)
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            await tasks.add.aenqueue(1, 2)
    # The master has both: they may still run (enqueue again with a job_id).
    assert len(alone.client().keys(JOB_KEY_PREFIX + "*")) == 2
