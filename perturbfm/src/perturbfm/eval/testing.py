"""Small paired perturbation data sets with known structure, for testing the metric panels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from perturbfm.data.dataset import PerturbDataset


@dataclass
class EvalCase:
    """A dataset with its test rows, test controls and the true deltas of the test rows."""

    ds: PerturbDataset
    test_idx: np.ndarray
    control_idx: np.ndarray
    true_delta: np.ndarray  # ds.delta[test_idx]


def make_eval_case(
    *,
    n_genes: int = 30,
    n_contexts: int = 2,
    n_perts: int = 4,
    n_per_group: int = 12,
    n_ctrl: int = 12,
    shared_controls: bool = False,
    seed: int = 0,
) -> EvalCase:
    """Controls then perturbed cells, per context; perturbation ``G<i>`` targets gene ``G<i>``.

    With ``shared_controls`` every group's cells are matched, in order, to the same pool of
    ``n_per_group`` extra control cells of its context that are NOT in ``control_idx``
    (cell-eval's layout: the prediction side has its own control, one per context).
    """
    rng = np.random.default_rng(seed)
    var = [f"G{i}" for i in range(n_genes)]
    xp: list[np.ndarray] = []
    xc: list[np.ndarray] = []
    rows: list[tuple[str, str, bool, list[str]]] = []
    for c in range(n_contexts):
        base = rng.gamma(2.0, 1.0, n_genes)
        ctrl = np.maximum(base + rng.normal(0, 0.5, (n_ctrl, n_genes)), 0)
        # controls: matched control = a shuffled other control cell
        xp.append(ctrl)
        xc.append(ctrl[rng.permutation(n_ctrl)])
        rows += [(f"ctx{c}", "control", True, [])] * n_ctrl
        pool = np.maximum(base + 0.2 + rng.normal(0, 0.5, (n_per_group, n_genes)), 0)
        if shared_controls:
            xp.append(pool)
            xc.append(pool)
            rows += [(f"ctx{c}", "control", True, ["pool"])] * n_per_group
        for p in range(n_perts):
            effect = rng.normal(0, 1.0, n_genes) * (rng.random(n_genes) < 0.3)
            effect[p] += 3.0
            matched = pool if shared_controls else ctrl[rng.integers(0, n_ctrl, n_per_group)]
            cells = np.maximum(base + effect + rng.normal(0, 0.5, (n_per_group, n_genes)), 0)
            xp.append(cells)
            xc.append(matched)
            rows += [(f"ctx{c}", f"G{p}", False, [f"G{p}"])] * n_per_group
    obs = pd.DataFrame(rows, columns=["context_id", "pert_id", "is_control", "pert_genes"])
    obs["batch_id"] = "b0"
    in_pool = obs["pert_genes"].map(lambda g: g == ["pool"]).to_numpy()
    obs["pert_genes"] = [[] if flag else g for flag, g in zip(in_pool, obs["pert_genes"], strict=True)]
    ds = PerturbDataset(X_control=np.vstack(xc), X_pert=np.vstack(xp), obs=obs, var=var)
    is_ctrl = obs["is_control"].to_numpy()
    test_idx = np.flatnonzero(~is_ctrl)
    control_idx = np.flatnonzero(is_ctrl & ~in_pool)
    return EvalCase(ds, test_idx, control_idx, np.asarray(ds.delta[test_idx], dtype=np.float64))
