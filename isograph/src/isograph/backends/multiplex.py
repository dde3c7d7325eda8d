"""The multiplex edge policy shared by the thresholded-network backends, and its calibration.

Fields (seed 002; every backend that thresholds a feature network takes them):
``alpha_switch`` and ``alpha_abundance`` bound the expected number of false edges among
switch-switch pairs and among pairs involving an abundance feature; ``allow_abundance_abundance``
lets abundance-abundance pairs be edges; ``alpha_abundance_grid``, when not empty, makes the
backend choose ``alpha_abundance`` from the grid by :func:`calibrate_alpha_abundance`.

Calibration criterion (data only, never truth): split-half stability. The samples are split
into two random halves; the network is built on each half at each grid value, and the two
module partitions are compared with the Saelens score used by the benchmark (F_rr of the
best-match Jaccard indices between the halves' modules). A value that lets in noise edges
gives modules that differ between halves; one that keeps too few abundance edges loses
modules both halves would agree on. Ties go to the smaller value (fewer expected false edges).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from isograph.network.threshold import bonferroni_z

KINDS = ("switch", "abundance")


def class_cutoffs(
    scale: np.ndarray,
    pairs: np.ndarray,
    *,
    alpha_switch: float,
    alpha_abundance: float,
    allow_abundance_abundance: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Bonferroni z and absolute cut-off per pair class (0 switch, 1 abundance).

    Parameters
    ----------
    scale
        Null scale per class pair, shape (2, 2) (NaN where a class pair has no pair).
    pairs
        Number of pairs per class pair, shape (2, 2).

    Returns
    -------
    z, cutoff
        Each shape (2, 2); ``cutoff`` is ``inf`` where edges are forbidden or undefined.
    """
    alpha = np.array([[alpha_switch, alpha_abundance], [alpha_abundance, alpha_abundance]])
    z = np.vectorize(bonferroni_z)(alpha, pairs)
    cutoff = np.where(np.isfinite(scale), scale * z, np.inf)
    if not allow_abundance_abundance:
        cutoff[1, 1] = np.inf
    return z, cutoff.astype(np.float64)


def describe(values: np.ndarray) -> dict[str, float | None]:
    """``{"switch-switch": v, "switch-abundance": v, "abundance-abundance": v}`` (None if not finite)."""
    return {
        f"{KINDS[a]}-{KINDS[b]}": (float(values[a, b]) if np.isfinite(values[a, b]) else None)
        for a in range(2)
        for b in range(a, 2)
    }


def split_half_agreement(labels_a: np.ndarray, labels_b: np.ndarray, *, min_size: int = 5) -> float:
    """Symmetric Saelens F_rr between two gene partitions (-1 = unassigned), in [0, 1]."""
    from isograph.backends.base import UNASSIGNED
    from isograph.scoring import BACKGROUND, jaccard_matrix

    a = np.where(labels_a >= 0, labels_a.astype(str), UNASSIGNED)
    b = np.where(labels_b >= 0, labels_b.astype(str), BACKGROUND)
    jac = jaccard_matrix(a, b, min_module_size=min_size).to_numpy()
    if jac.size == 0:
        return 0.0
    recovery, relevance = float(jac.max(axis=0).mean()), float(jac.max(axis=1).mean())
    total = recovery + relevance
    return 2.0 * recovery * relevance / total if total > 0 else 0.0


def calibrate_alpha_abundance(
    grid: Sequence[float],
    partition: Callable[[float, np.ndarray], np.ndarray],
    n_samples: int,
    *,
    seed: int,
    n_splits: int = 2,
) -> tuple[float, list[dict[str, Any]]]:
    """Choose ``alpha_abundance`` from ``grid`` by split-half stability.

    Parameters
    ----------
    grid
        Candidate values (> 0).
    partition
        ``partition(alpha_abundance, sample_index) -> gene labels`` (-1 unassigned), the
        backend's module rule run on the given samples only.
    n_samples
        Number of samples.
    seed
        Seeds the half splits (the same splits serve every grid value).
    n_splits
        Random half splits averaged.

    Returns
    -------
    best, table
        The chosen value, and one ``{"alpha_abundance", "stability"}`` row per grid value.
    """
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(n_splits):
        order = rng.permutation(n_samples)
        halves.append((np.sort(order[: n_samples // 2]), np.sort(order[n_samples // 2 :])))
    table = []
    for alpha in sorted(float(a) for a in grid):
        scores = [split_half_agreement(partition(alpha, a), partition(alpha, b)) for a, b in halves]
        table.append({"alpha_abundance": alpha, "stability": float(np.mean(scores))})
    best = max(table, key=lambda row: (round(row["stability"], 6), -row["alpha_abundance"]))
    return float(best["alpha_abundance"]), table
