"""run_tasks gives the serial answer, in input order, on every kind of cluster it can reach here."""

from __future__ import annotations

import numpy as np
import pytest

from omicsrun import InputError
from omicsrun.parallel import check_cluster, run_tasks


def _seeded_sum(item: tuple[int, int]) -> float:
    seed, n = item
    return float(np.random.default_rng(seed).standard_normal(n).sum())


ITEMS = [(seed, 50 + seed) for seed in range(6)]


def test_serial_matches_direct_computation():
    seen: list[tuple[int, int]] = []
    out = run_tasks(_seeded_sum, ITEMS, cluster="serial", progress=lambda d, t: seen.append((d, t)))
    assert out == [_seeded_sum(i) for i in ITEMS]
    assert seen[-1] == (6, 6)


@pytest.mark.slow
def test_local_cluster_and_scheduler_address_match_serial():
    from distributed import LocalCluster

    serial = run_tasks(_seeded_sum, ITEMS, cluster="serial")
    assert run_tasks(_seeded_sum, ITEMS, cluster="local", n_workers=2) == serial
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        assert run_tasks(_seeded_sum, ITEMS, cluster=cluster.scheduler_address) == serial


@pytest.mark.parametrize("bad", ["", "dask", "threads"])
def test_unknown_cluster_is_one_input_error(bad):
    with pytest.raises(InputError, match="cluster must be"):
        check_cluster(bad)
    with pytest.raises(InputError, match="cluster must be"):
        run_tasks(_seeded_sum, ITEMS, cluster=bad)


def test_bad_worker_count():
    with pytest.raises(InputError, match="n_workers"):
        run_tasks(_seeded_sum, ITEMS, cluster="local", n_workers=0)
