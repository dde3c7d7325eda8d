"""Small planted datasets with known answers, for tests of models and runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perturbfm.data.dataset import PerturbDataset


def make_planted(
    *,
    n_genes: int = 12,
    n_cells: int = 8,
    contexts: tuple[str, ...] = ("c0", "c1"),
    singles: tuple[str, ...] = ("g0", "g1", "g2", "g3"),
    combos: tuple[tuple[str, str], ...] = (("g0", "g1"), ("g2", "g3")),
    noise: float = 0.1,
    additive_exact: bool = False,
    seed: int = 0,
) -> PerturbDataset:
    """Controls plus single and combination perturbations with planted per-context effects.

    With ``additive_exact`` the combination deltas equal the sum of the singles' deltas
    exactly (no noise on perturbed cells), so the additive baseline must recover them.
    """
    rng = np.random.default_rng(seed)
    effect = {(g, c): rng.normal(0, 1, n_genes) for g in singles for c in contexts}
    rows, ctrl, delta = [], [], []
    for c in contexts:
        base = rng.normal(2, 0.5, n_genes)
        groups: list[tuple[str, list[str]]] = (
            [("control", [])] + [(g, [g]) for g in singles] + [(f"{a}+{b}", [a, b]) for a, b in combos]
        )
        for pert, genes in groups:
            d = sum((effect[(g, c)] for g in genes), np.zeros(n_genes))
            for i in range(n_cells):
                x_c = base + rng.normal(0, noise, n_genes)
                eps = 0 if (additive_exact and genes) else rng.normal(0, noise, n_genes)
                ctrl.append(x_c)
                delta.append(d + eps)
                rows.append(
                    {
                        "pert_id": pert,
                        "context_id": c,
                        "batch_id": f"b{i % 2}",
                        "is_control": not genes,
                        "pert_genes": genes,
                    }
                )
    x_ctrl = np.asarray(ctrl, dtype=np.float32)
    d = np.asarray(delta, dtype=np.float32)
    return PerturbDataset(
        X_control=x_ctrl,
        X_pert=x_ctrl + d,
        delta=d,
        obs=pd.DataFrame(rows),
        var=[f"g{i}" for i in range(n_genes)],
    )
