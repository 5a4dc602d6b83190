"""A Redis Cluster (three masters, three replicas) shared by this folder's tests that do not harm it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from budgets.cluster.nodes import Cluster


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
