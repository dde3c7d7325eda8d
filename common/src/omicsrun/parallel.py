"""Fan independent tasks out to workers: in process, on a local Dask cluster, an existing
scheduler, or SLURM, with no change in the calling code.

Every caller (benchmark fixtures x backends x seeds, stability resamples, ensemble members,
ablation runs) hands :func:`run_tasks` a pure function and a list of items that carry their own
seeds, so the results are identical whatever runs them, and come back in input order.

``cluster`` values:

- ``"serial"``: in this process, one item after the other (no Dask needed);
- ``"local"``: a :class:`distributed.LocalCluster` of worker processes (one thread each) on
  this machine, ``n_workers`` of them (all cores by default);
- ``"tcp://host:port"`` (or any ``scheme://`` address): an existing Dask scheduler;
- ``"slurm"``: a :class:`dask_jobqueue.SLURMCluster` scaled to ``n_workers`` jobs; queue,
  account, cores and memory come from Dask's own configuration (``~/.config/dask/jobqueue.yaml``
  or ``DASK_JOBQUEUE__SLURM__*`` variables), as dask-jobqueue documents.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from omicsrun.errors import InputError

T = TypeVar("T")
R = TypeVar("R")

CLUSTER_HELP = "serial, local (a Dask cluster on this machine), slurm, or a scheduler address tcp://host:port"


def check_cluster(cluster: str) -> str:
    """Return ``cluster`` when it names a known kind, else raise :class:`InputError`."""
    text = str(cluster).strip()
    if text in {"serial", "local", "slurm"} or "://" in text:
        return text
    msg = f"cluster must be {CLUSTER_HELP}; found {cluster!r}"
    raise InputError(msg)


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    cluster: str = "serial",
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]``, computed where ``cluster`` says, in input order.

    Parameters
    ----------
    fn
        A picklable (module-level) function; it must not depend on global state.
    items
        The work items; each carries whatever it needs (including its seed).
    cluster
        See the module docstring.
    n_workers
        Workers for ``local`` (default: all cores, at most one per item) and jobs for ``slurm``.
    progress
        Called as ``progress(done, total)`` after each finished item.

    Raises
    ------
    InputError
        For an unknown cluster kind, or when Dask (or dask-jobqueue for SLURM) is not installed.
    """
    kind = check_cluster(cluster)
    if n_workers is not None and (isinstance(n_workers, bool) or int(n_workers) < 1):
        msg = f"n_workers must be a positive integer; found {n_workers!r}"
        raise InputError(msg)
    items = list(items)
    if not items:
        return []
    if kind == "serial" or (kind == "local" and len(items) == 1):
        results: list[R] = []
        for i, item in enumerate(items):
            results.append(fn(item))
            if progress is not None:
                progress(i + 1, len(items))
        return results
    with _client(kind, n_workers=n_workers, n_items=len(items)) as client:
        return _gather_in_order(client, fn, items, progress)


def _gather_in_order(client: Any, fn: Callable[[T], R], items: list[T], progress: Any) -> list[R]:
    from distributed import as_completed

    # pure=False: identical items (say two seeds that hash alike) still run separately.
    futures = client.map(fn, items, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * len(items)
    for done, future in enumerate(as_completed(futures), start=1):
        out[index[future.key]] = future.result()
        if progress is not None:
            progress(done, len(items))
    return out


@contextmanager
def _client(kind: str, *, n_workers: int | None, n_items: int) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ModuleNotFoundError as err:
        msg = f"cluster {kind!r} needs Dask: pip install 'dask[distributed]'"
        raise InputError(msg) from err
    if kind == "local":
        workers = n_workers or min(os.cpu_count() or 1, n_items)
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    elif kind == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ModuleNotFoundError as err:
            msg = "cluster 'slurm' needs dask-jobqueue: pip install dask-jobqueue"
            raise InputError(msg) from err
        slurm: Any = SLURMCluster()
        slurm.scale(jobs=n_workers or n_items)
        client = Client(slurm)
        try:
            yield client
        finally:
            client.close()
            slurm.close()
    else:
        try:
            client = Client(kind, timeout="30s")
        except OSError as err:
            msg = f"could not reach the Dask scheduler at {kind}: {err}"
            raise InputError(msg) from err
        try:
            yield client
        finally:
            client.close()
