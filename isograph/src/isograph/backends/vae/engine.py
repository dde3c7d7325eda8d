"""Torch side of the VAE backend: grid of latent sizes, training, decoded signal, loadings.

Imported only inside :meth:`VaeNetworkModel.fit` / :func:`load_vae`, after
:func:`require_torch` succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from isograph.backends.vae.network import FeatureVAE
from isograph.backends.vae.training import TrainingHistory, split_samples, train_vae


@dataclass
class TrainedVAE:
    """A trained network and what module inference needs from it.

    Attributes
    ----------
    network
        The kept network (best latent size, best validation epoch), in eval mode, on CPU.
    decoded
        ``decoder(encoder_mean(X))``, shape (n_samples, n_features), float32.
    kl_per_dim
        Mean KL per latent dimension over all samples, shape (n_latent,).
    active_dims
        Dimensions whose KL reaches the collapse threshold, shape (n_active,).
    loadings
        RMS decoder Jacobian over samples for the active dims, shape (n_features, n_active).
    history
        Training history of the kept network.
    grid
        One row per latent size tried: ``latent_dim``, ``best_val_elbo``, ``best_epoch``, ``n_epochs``.
    """

    network: FeatureVAE
    decoded: np.ndarray
    kl_per_dim: np.ndarray
    active_dims: np.ndarray
    loadings: np.ndarray
    history: TrainingHistory
    grid: list[dict[str, Any]] = field(default_factory=list)


def build_network(n_features: int, n_latent: int, n_hidden: int, dropout: float) -> FeatureVAE:
    """The network with the architecture a checkpoint records."""
    return FeatureVAE(n_features, n_latent, n_hidden, dropout)


def fit_vae(x: np.ndarray, *, config: Any, seed: int, device: torch.device) -> TrainedVAE:
    """Train one network per latent size of the grid; keep the best validation ELBO.

    Deterministic for a fixed seed on CPU: torch's global generator is forked, seeded here
    and restored afterwards, so the caller's random state is untouched.

    Parameters
    ----------
    x
        Standardised features, shape (n_samples, n_features).
    config
        A :class:`~isograph.backends.vae.backend.VaeConfig`.
    seed
        Seeds the split, the initial weights, the shuffling and the noise.
    device
        Where to train.
    """
    grid = list(config.latent_grid) if config.latent_grid else [config.latent_dim]
    train_idx, val_idx = split_samples(x.shape[0], config.val_fraction, seed)
    data = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    x_train, x_val = data[train_idx].to(device), data[val_idx].to(device)
    rows: list[dict[str, Any]] = []
    best: tuple[float, FeatureVAE, TrainingHistory] | None = None
    with torch.random.fork_rng(devices=[]):
        for k in grid:
            torch.manual_seed(int(seed) * 1009 + int(k))
            network = build_network(x.shape[1], int(k), config.hidden_dim, config.dropout).to(device)
            history = train_vae(
                network,
                x_train,
                x_val,
                max_epochs=config.max_epochs,
                patience=config.patience,
                warmup_epochs=config.warmup_epochs,
                learning_rate=config.learning_rate,
                weight_decay=config.weight_decay,
                batch_size=config.batch_size,
                grad_clip=config.grad_clip,
                seed=int(seed) * 7919 + int(k),
                progress=config.progress,
                description=f"vae k={k}",
            )
            rows.append(
                {
                    "latent_dim": int(k),
                    "best_val_elbo": history.best_val_elbo,
                    "best_epoch": history.best_epoch,
                    "n_epochs": history.n_epochs,
                }
            )
            if best is None or history.best_val_elbo > best[0]:
                best = (history.best_val_elbo, network, history)
    if best is None:  # pragma: no cover - the grid is validated non-empty
        msg = "empty latent grid"
        raise RuntimeError(msg)
    _, network, history = best
    network = network.to("cpu").eval()
    decoded, kl = decode_all(network, data)
    active = np.flatnonzero(kl >= config.collapse_kl)
    loadings = rms_jacobian(network, data, active)
    return TrainedVAE(
        network=network,
        decoded=decoded,
        kl_per_dim=kl,
        active_dims=active,
        loadings=loadings,
        history=history,
        grid=rows,
    )


@torch.no_grad()
def decode_all(network: FeatureVAE, data: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Decoded signal at the posterior means (n, p) and the mean KL per latent dim (k,)."""
    network.eval()
    mu, log_var = network.encode(data)
    decoded = network.decode(mu)
    kl = (0.5 * (mu**2 + torch.exp(log_var) - 1.0 - log_var)).mean(dim=0)
    return decoded.numpy().astype(np.float32), kl.numpy().astype(np.float64)


def rms_jacobian(network: FeatureVAE, data: torch.Tensor, dims: np.ndarray) -> np.ndarray:
    """``sqrt(mean_i (dD_f / dz_j)^2)`` at the posterior means, shape (p, len(dims)).

    One forward-mode product per latent dimension (k passes of n x p), never a p x k x n array.
    """
    from torch.func import jvp

    with torch.no_grad():
        mu, _ = network.encode(data)
    out = np.zeros((network.n_features, len(dims)))
    for col, dim in enumerate(dims):
        tangent = torch.zeros_like(mu)
        tangent[:, int(dim)] = 1.0
        slope = jvp(network.decode, (mu,), (tangent,))[1]
        out[:, col] = torch.sqrt((slope.detach() ** 2).mean(dim=0)).numpy()
    return out
