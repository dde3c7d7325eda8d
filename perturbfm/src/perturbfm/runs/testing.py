"""A stored synthetic dataset and split, the starting point of run and command-line tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perturbfm.splits import Split


def stored_synthetic_split(root: Path, spec: dict[str, Any], *, seed: int = 0, **synthetic: Any) -> Split:
    """Save ``make_synthetic(**synthetic)`` at ``root/data`` and a split of it in ``root/splits``.

    Parameters
    ----------
    root
        Folder that receives ``data/`` (the dataset artifact) and ``splits/`` (the split store).
    spec
        Split spec for :func:`perturbfm.splits.create_split`.
    seed
        Seed of the split.
    **synthetic
        Keyword arguments of :func:`perturbfm.data.synthetic.make_synthetic`.

    Returns
    -------
    perturbfm.splits.Split
        The stored split (made for the saved dataset's hash).
    """
    from perturbfm.data.artifact import dataset_hash, save_dataset
    from perturbfm.data.synthetic import make_synthetic
    from perturbfm.splits import SplitStore, create_split

    ds = make_synthetic(**synthetic)
    save_dataset(ds, root / "data")
    split = create_split(ds, spec, seed=seed, data_hash=dataset_hash(root / "data"))
    SplitStore(root=root / "splits").save(split)
    return split
