"""Enqueueing when the surrounding transaction commits (jobs.transactions)."""

from __future__ import annotations

import pytest
from django.db import transaction

from jobs import aenqueue_on_commit, enqueue_on_commit
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_rolled_back_transaction_enqueues_nothing(r):
    with pytest.raises(RuntimeError), transaction.atomic():
        result = enqueue_on_commit(tasks.add, 1, 2)
        raise RuntimeError("roll back")
    assert r.exists(f"arq:job:{result.id}") == 0
    assert r.zcard("arq:queue:default") == 0
    with transaction.atomic():
        committed = enqueue_on_commit(tasks.add, 3, 4)
        assert r.exists(f"arq:job:{committed.id}") == 0  # not before the commit
    assert r.exists(f"arq:job:{committed.id}") == 1


async def test_aenqueue_on_commit_from_async_code(r):
    result = await aenqueue_on_commit(tasks.aadd, 1, 2)  # autocommit: at once
    assert r.exists(f"arq:job:{result.id}") == 1
