"""Collapse diagnostics: are predicted effects as diverse across perturbations as the truth?

A model that predicts the same delta for every perturbation can score well on MSE; these
numbers expose it (scGPT#277). Each is computed over the groups of one context, side by
side for prediction and truth.
"""

from __future__ import annotations

import numpy as np

TOP_K_GENES = 50


def _mean_offdiag(m: np.ndarray) -> float:
    n = m.shape[0]
    if n < 2:
        return float("nan")
    return float((m.sum() - np.trace(m)) / (n * (n - 1)))


def mean_pairwise_cosine(deltas: np.ndarray) -> float:
    """Mean cosine between distinct rows of ``deltas`` (n_groups, n_genes); zero rows give 0."""
    nrm = np.linalg.norm(deltas, axis=1, keepdims=True)
    unit = np.divide(deltas, nrm, out=np.zeros_like(deltas), where=nrm > 0)
    return _mean_offdiag(unit @ unit.T)


def mean_pairwise_jaccard(deltas: np.ndarray, *, k: int = TOP_K_GENES) -> float:
    """Mean Jaccard between distinct rows' top-k gene sets by |delta|."""
    k = min(k, deltas.shape[1])
    top = np.argsort(-np.abs(deltas), axis=1, kind="stable")[:, :k]
    member = np.zeros(deltas.shape, dtype=np.float64)
    np.put_along_axis(member, top, 1.0, axis=1)
    inter = member @ member.T
    return _mean_offdiag(inter / (2 * k - inter))


def spread(deltas: np.ndarray) -> float:
    """Sum over genes of the std (ddof=0) across rows of ``deltas``."""
    return float(deltas.std(axis=0).sum())


def collapse_diagnostics(pred_delta: np.ndarray, true_delta: np.ndarray) -> dict[str, float]:
    """Collapse diagnostics of one context.

    Parameters
    ----------
    pred_delta, true_delta
        Group-mean deltas vs the context's reference control, (n_groups, n_genes).

    Returns
    -------
    dict
        ``delta_spread_pred``, ``delta_spread_true``, ``delta_spread_ratio`` (pred/true),
        ``mean_pairwise_cosine_pred``/``_true``, ``deg_jaccard_pred``/``_true``, ``n_groups``.
    """
    sp_pred, sp_true = spread(pred_delta), spread(true_delta)
    return {
        "delta_spread_pred": sp_pred,
        "delta_spread_true": sp_true,
        "delta_spread_ratio": sp_pred / sp_true if sp_true > 0 else float("nan"),
        "mean_pairwise_cosine_pred": mean_pairwise_cosine(pred_delta),
        "mean_pairwise_cosine_true": mean_pairwise_cosine(true_delta),
        "deg_jaccard_pred": mean_pairwise_jaccard(pred_delta),
        "deg_jaccard_true": mean_pairwise_jaccard(true_delta),
        "n_groups": float(pred_delta.shape[0]),
    }
