"""Enqueueing when the surrounding transaction commits (jobs.transactions)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import TransactionTestCase

from jobs import aenqueue_on_commit, enqueue_on_commit
from jobs.testing import drain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_rolled_back_transaction_enqueues_nothing(r):
    with pytest.raises(RuntimeError), transaction.atomic():
        result = enqueue_on_commit(tasks.add, 1, 2)
        raise RuntimeError("roll back")
    assert r.exists(f"arq:job:{result.id}") == 0
    assert r.zcard("arq:queue") == 0
    with transaction.atomic():
        committed = enqueue_on_commit(tasks.add, 3, 4)
        assert r.exists(f"arq:job:{committed.id}") == 0  # not before the commit
    assert r.exists(f"arq:job:{committed.id}") == 1


async def test_aenqueue_on_commit_from_async_code(r):
    result = await aenqueue_on_commit(tasks.aadd, 1, 2)  # autocommit: at once
    assert r.exists(f"arq:job:{result.id}") == 1


class NarrowedAppsTestCase(TransactionTestCase):
    """Django's own tests and users' suites narrow the app registry this way;
    workers still import every installed app's tasks, so enqueueing works."""

    available_apps: list[str] = []

    def test_an_installed_apps_task_can_be_enqueued_and_run(self):
        from webproject.tasks import add

        with transaction.atomic():
            result = add.enqueue(2, 3)  # not deferred to the commit
        drain()
        self.assertEqual(result.get(timeout=1), 5)
