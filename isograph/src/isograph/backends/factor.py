"""Factor analysis that scales: blockwise EM with the Woodbury identity, CV choice of k, varimax.

The model is ``x = W z + e`` with ``z ~ N(0, I_k)`` and ``e ~ N(0, diag(psi))`` for a sample
``x`` of p standardised features. Its covariance ``C = W W^T + Psi`` is never formed: every
quantity goes through ``M = I_k + W^T Psi^-1 W`` (k x k) and products of the n x p data with
p x k matrices, taken ``block_size`` features at a time. Memory is O(n p + p k) (the data
plus the loadings), so 20,000 features x 1,000 samples fits where scikit-learn's
``FactorAnalysis.score`` (which builds the p x p precision) does not.

EM (Rubin & Thayer 1982), with ``S = X^T X / n`` never formed:

- E step: ``B = M^-1 W^T Psi^-1`` (k x p), ``Ez = X B^T`` (n x k),
  ``Ezz = I - B W + Ez^T Ez / n``;
- M step: ``W = (X^T Ez / n) Ezz^-1``, ``psi = diag(S) - rowsum(W * X^T Ez / n)``.

Log-likelihood per sample (Woodbury and the matrix determinant lemma):
``-1/2 [p log 2 pi + sum log psi + log det M + x^T Psi^-1 x - v^T M^-1 v]``, ``v = W^T Psi^-1 x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_PSI_FLOOR = 1e-4


@dataclass(frozen=True, eq=False)
class FactorModel:
    """A fitted factor model.

    Attributes
    ----------
    loadings
        W, shape (n_features, n_factors).
    noise_variance
        psi, shape (n_features,).
    n_iter
        EM iterations run.
    converged
        Whether the relative change in log-likelihood fell below the tolerance.
    loglik
        Mean log-likelihood per sample of the training data.
    """

    loadings: np.ndarray
    noise_variance: np.ndarray
    n_iter: int
    converged: bool
    loglik: float

    @property
    def n_factors(self) -> int:
        return int(self.loadings.shape[1])

    def _m_inverse(self) -> tuple[np.ndarray, np.ndarray, float]:
        w_psi = self.loadings / self.noise_variance[:, None]  # Psi^-1 W, (p, k)
        m = np.eye(self.n_factors) + self.loadings.T @ w_psi
        _, logdet = np.linalg.slogdet(m)
        return w_psi, np.linalg.inv(m), float(logdet)

    def scores(self, x: np.ndarray, *, block_size: int = 4096) -> np.ndarray:
        """Posterior means E[z | x], shape (n_samples, n_factors)."""
        w_psi, m_inv, _ = self._m_inverse()
        return _times(x, w_psi, block_size) @ m_inv

    def loglik_per_sample(self, x: np.ndarray, *, block_size: int = 4096) -> np.ndarray:
        """Log-likelihood of each row of ``x`` (n_samples, n_features): shape (n_samples,)."""
        w_psi, m_inv, logdet_m = self._m_inverse()
        p = x.shape[1]
        v = _times(x, w_psi, block_size)  # (n, k)
        quad = np.zeros(x.shape[0])
        for start in range(0, p, block_size):
            block = np.asarray(x[:, start : start + block_size], dtype=np.float64)
            quad += (block**2 / self.noise_variance[start : start + block_size]).sum(axis=1)
        quad -= np.einsum("ik,kl,il->i", v, m_inv, v)
        logdet_c = float(np.log(self.noise_variance).sum()) + logdet_m
        return -0.5 * (p * np.log(2 * np.pi) + logdet_c + quad)


def _times(x: np.ndarray, right: np.ndarray, block_size: int) -> np.ndarray:
    # x (n, p) @ right (p, k), one block of features at a time (x may be float32).
    out = np.zeros((x.shape[0], right.shape[1]))
    for start in range(0, x.shape[1], block_size):
        out += (
            np.asarray(x[:, start : start + block_size], dtype=np.float64) @ right[start : start + block_size]
        )
    return out


def _t_times(x: np.ndarray, right: np.ndarray, block_size: int) -> np.ndarray:
    # x.T (p, n) @ right (n, k), blockwise over features.
    p = x.shape[1]
    out = np.empty((p, right.shape[1]))
    for start in range(0, p, block_size):
        out[start : start + block_size] = (
            np.asarray(x[:, start : start + block_size], dtype=np.float64).T @ right
        )
    return out


def fit_factor_model(
    x: np.ndarray,
    n_factors: int,
    *,
    max_iter: int = 200,
    tol: float = 1e-5,
    block_size: int = 4096,
) -> FactorModel:
    """Maximum-likelihood factor analysis by EM, without a p x p matrix.

    Parameters
    ----------
    x
        Centred data, shape (n_samples, n_features) (float32 is fine; blocks are promoted).
    n_factors
        k >= 1.
    max_iter, tol
        EM stops when the mean log-likelihood gains less than ``tol * |loglik|``.
    block_size
        Features per block.

    Returns
    -------
    FactorModel
        Deterministic: initialised from the truncated SVD of ``x`` (no randomness).
    """
    n, p = x.shape
    k = int(min(n_factors, n - 1, p))
    var = np.zeros(p)
    for start in range(0, p, block_size):
        block = np.asarray(x[:, start : start + block_size], dtype=np.float64)
        var[start : start + block_size] = (block**2).mean(axis=0)
    # PCA start: the top-k right singular vectors from the n x n Gram matrix.
    gram = _times(x, np.asarray(x, dtype=np.float64).T, block_size) if n <= p else None
    if gram is not None:
        evals, evecs = np.linalg.eigh(gram / n)
        u = evecs[:, np.argsort(evals)[::-1][:k]]
        w = _t_times(x, u, block_size) / np.sqrt(n)  # = V diag(s) / sqrt(n): the PCA loadings
    else:
        _, s, vt = np.linalg.svd(np.asarray(x, dtype=np.float64), full_matrices=False)
        w = vt[:k].T * (s[:k] / np.sqrt(n))
    psi = np.maximum(var - (w**2).sum(axis=1), _PSI_FLOOR * np.maximum(var, 1e-12))
    model = FactorModel(w, psi, n_iter=0, converged=False, loglik=-np.inf)
    previous = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        w_psi, m_inv, _ = model._m_inverse()
        beta_t = w_psi @ m_inv  # B^T, (p, k)
        ez = _times(x, beta_t, block_size)  # (n, k)
        ezz = np.eye(k) - beta_t.T @ model.loadings + ez.T @ ez / n
        xez = _t_times(x, ez, block_size) / n  # S B^T, (p, k)
        w = np.linalg.solve(ezz, xez.T).T
        psi = np.maximum(var - (w * xez).sum(axis=1), _PSI_FLOOR * np.maximum(var, 1e-12))
        model = FactorModel(w, psi, n_iter=it, converged=False, loglik=-np.inf)
        loglik = float(model.loglik_per_sample(x, block_size=block_size).mean())
        if np.isfinite(previous) and abs(loglik - previous) <= tol * abs(loglik):
            converged = True
            previous = loglik
            break
        previous = loglik
    return FactorModel(model.loadings, model.noise_variance, n_iter=it, converged=converged, loglik=previous)


def varimax(loadings: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Varimax rotation (Kaiser 1958) of a p x k loading matrix.

    Returns
    -------
    tuple
        ``(rotated, rotation)`` with ``rotated = loadings @ rotation``; each rotated column's
        sign makes its largest-|value| entries positive on balance (sum of cubes >= 0).
    """
    p, k = loadings.shape
    rotation = np.eye(k)
    if k < 2:
        return loadings.copy(), rotation
    total = 0.0
    for _ in range(max_iter):
        lam = loadings @ rotation
        u, s, vt = np.linalg.svd(loadings.T @ (lam**3 - lam * (lam**2).sum(axis=0) / p))
        rotation = u @ vt
        new_total = float(s.sum())
        if total > 0 and new_total < total * (1 + tol):
            break
        total = new_total
    rotated = loadings @ rotation
    signs = np.where((rotated**3).sum(axis=0) < 0, -1.0, 1.0)
    return rotated * signs, rotation * signs


def choose_n_factors(
    x: np.ndarray,
    candidates: tuple[int, ...],
    *,
    n_folds: int,
    seed: int,
    max_iter: int,
    tol: float,
    block_size: int,
    rule: str = "within_se",
) -> tuple[int, dict[int, float]]:
    """k by held-out log-likelihood per sample over ``n_folds`` folds of the samples.

    ``rule="max"`` takes the best mean; ``rule="within_se"`` takes the largest k whose mean
    held-out log-likelihood is within one standard error (of the per-sample paired difference)
    of the best: the likelihood barely separates k around its optimum, and for module
    discovery too few factors merge programs while extra factors only add small modules that
    the size filter removes.

    Returns
    -------
    tuple
        ``(chosen_k, {k: mean held-out log-likelihood per sample})``.
    """
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n) % n_folds
    per_sample: dict[int, np.ndarray] = {}
    for k in candidates:
        held = np.full(n, np.nan)
        for f in range(n_folds):
            train, test = x[fold != f], x[fold == f]
            if k >= train.shape[0]:
                break
            mean = train.mean(axis=0)
            model = fit_factor_model(train - mean, k, max_iter=max_iter, tol=tol, block_size=block_size)
            held[fold == f] = model.loglik_per_sample(test - mean, block_size=block_size)
        if np.isfinite(held).all():
            per_sample[int(k)] = held
    scores = {k: float(v.mean()) for k, v in per_sample.items()}
    if not scores:
        return int(min(candidates)), scores
    best = max(scores, key=lambda kk: (scores[kk], -kk))
    if rule == "max":
        return best, scores
    close = [
        k
        for k, v in per_sample.items()
        if scores[best] - scores[k] <= np.std(per_sample[best] - v, ddof=1) / np.sqrt(n)
    ]
    return max(close), scores
