"""WAIT_REPLICAS: enqueue returns once replicas hold the job (Redis's WAIT)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from jobs import NotReplicated, chain
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
        flows = [
            chain(tasks.add.bind(1, 2), tasks.double.bind()).enqueue(),
            await chain(tasks.add.bind(3, 4), tasks.double.bind()).aenqueue(),
        ]
    held = replica.client()
    for result in done:
        assert held.exists(JOB_KEY_PREFIX + result.id)
    for flow in flows:  # each workflow's first step
        assert held.exists(JOB_KEY_PREFIX + flow.step_ids[0])


async def test_too_few_replicas_raise_not_replicated(own_redis):
    alone = own_redis()
    with override_settings(**waiting(alone.url, WAIT_TIMEOUT=0.05)):
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            tasks.add.enqueue(1, 2)
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            await tasks.add.aenqueue(1, 2)
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            chain(tasks.add.bind(1, 2), tasks.double.bind()).enqueue()
    # The master has all three: they may still run (enqueue again with a job_id).
    assert len(alone.client().keys(JOB_KEY_PREFIX + "*")) == 3
