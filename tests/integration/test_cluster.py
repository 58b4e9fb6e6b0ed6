"""Redis Cluster is not supported yet: pointed at a cluster node, enqueue and
workers say so, instead of failing on MOVED or CROSSSLOT replies."""

from __future__ import annotations

import pytest
from django.test import override_settings

from jobs import EnqueueError, chain
from jobs.exceptions import WorkerError
from jobs.testing import drain
from tests import tasks
from tests.servers import RedisClusterSet, settings_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def cluster():
    three_masters = RedisClusterSet()
    three_masters.start()
    yield three_masters
    three_masters.stop()


def test_enqueue_on_a_cluster_node_says_cluster_is_not_supported(cluster):
    with override_settings(**settings_for(cluster.url)):
        with pytest.raises(EnqueueError, match="Redis Cluster is not supported yet"):
            tasks.add.enqueue(1, 2)


def test_a_worker_refuses_to_start_on_a_cluster_node(cluster):
    with override_settings(**settings_for(cluster.url)):
        with pytest.raises(WorkerError, match="is a Redis Cluster node"):
            drain()


def test_a_workflow_on_a_cluster_node_says_cluster_is_not_supported(cluster):
    flow = chain(tasks.add.bind(1, 2), tasks.double.bind())
    with override_settings(**settings_for(cluster.url)):
        with pytest.raises(EnqueueError, match="Redis Cluster is not supported yet"):
            flow.enqueue()
