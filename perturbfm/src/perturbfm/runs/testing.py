"""A stored synthetic dataset and split, the starting point of run and command-line tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perturbfm.splits import Split


def stored_synthetic_split(
    root: Path, spec: dict[str, Any], *, seed: int = 0, nonnegative: bool = False, **synthetic: Any
) -> Split:
    """Save ``make_synthetic(**synthetic)`` at ``root/data`` and a split of it in ``root/splits``.

    Parameters
    ----------
    root
        Folder that receives ``data/`` (the dataset artifact) and ``splits/`` (the split store).
    spec
        Split spec for :func:`perturbfm.splits.create_split`.
    seed
        Seed of the split.
    nonnegative
        Shift expression so that its minimum is 0 (deltas unchanged), as log-normalised data
        are; cell-eval refuses negative expression.
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
    if nonnegative:
        import numpy as np

        from perturbfm.data.dataset import PerturbDataset

        x_pert, x_ctrl = np.asarray(ds.X_pert), np.asarray(ds.X_control)
        shift = -min(float(x_pert.min()), float(x_ctrl.min()), 0.0)
        ds = PerturbDataset(
            X_control=(x_ctrl + shift).astype(np.float32),
            X_pert=(x_pert + shift).astype(np.float32),
            obs=ds.obs,
            var=list(ds.var),
        )
    save_dataset(ds, root / "data")
    split = create_split(ds, spec, seed=seed, data_hash=dataset_hash(root / "data"))
    SplitStore(root=root / "splits").save(split)
    return split


def tiny_context_ood_split(root: Path, *, seed: int = 2) -> Split:
    """The command-line tests' smallest set-up: 240 synthetic rows x 20 genes, 2 contexts,
    5 perturbations, context ``C1`` held out (:func:`stored_synthetic_split`)."""
    return stored_synthetic_split(
        root,
        {"name": "context_ood", "holdout_contexts": ["C1"]},
        n_obs=240,
        n_genes=20,
        n_contexts=2,
        n_perts=5,
        seed=seed,
    )
