"""One training loop for the VAE: held-out samples, early stopping, KL warm-up, clipping.

Imports torch at module level; reach it only through code guarded by
:func:`isograph.backends.vae._torch.require_torch`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from isograph.backends.vae.network import FeatureVAE


@dataclass
class TrainingHistory:
    """What one training run did (recorded in the backend's diagnostics).

    Attributes
    ----------
    best_epoch
        Epoch (1-based) whose weights were kept: the lowest validation negative ELBO.
    best_val_elbo
        Validation ELBO per held-out sample at that epoch (higher is better).
    n_epochs
        Epochs run before early stopping (or the cap).
    stopped_early
        Whether patience ran out before ``max_epochs``.
    train_loss, val_elbo
        Per epoch: training loss (KL weighted by the warm-up) and validation ELBO.
    """

    best_epoch: int = 0
    best_val_elbo: float = -math.inf
    n_epochs: int = 0
    stopped_early: bool = False
    train_loss: list[float] = field(default_factory=list)
    val_elbo: list[float] = field(default_factory=list)


def split_samples(n_samples: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of sample indices into (train, validation); at least 2 held out, 4 kept."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_samples)
    n_val = min(max(2, round(val_fraction * n_samples)), max(n_samples - 4, 1))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def train_vae(
    model: FeatureVAE,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    *,
    max_epochs: int,
    patience: int,
    warmup_epochs: int,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    grad_clip: float,
    seed: int,
    progress: bool,
    description: str = "vae",
) -> TrainingHistory:
    """Train ``model`` in place with Adam; keep the weights of the best validation ELBO.

    Parameters
    ----------
    model
        The network, already on the device of ``x_train``.
    x_train, x_val
        Training and held-out samples, shapes (n_train, p) and (n_val, p).
    max_epochs, patience
        Epoch cap; stop when the validation ELBO has not improved for ``patience`` epochs.
    warmup_epochs
        The KL weight rises linearly from 0 to 1 over these epochs (no stopping before the
        weight reaches 1: an ELBO measured under a smaller weight is not comparable).
    learning_rate, weight_decay
        AdamW settings.
    batch_size
        Samples per step (reshuffled each epoch with a generator seeded by ``seed``).
    grad_clip
        Maximum global gradient norm.
    seed
        Seeds the initial weights' shuffling generator and the reparameterisation noise.
    progress
        Draw a tqdm bar with the epoch, training loss and validation ELBO.

    Returns
    -------
    TrainingHistory
    """
    from tqdm.auto import tqdm

    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    history = TrainingHistory()
    best_state: dict[str, Any] | None = None
    since_best = 0
    n_train = x_train.shape[0]
    # disable=None: tqdm draws only on a terminal (quiet in logs and child processes).
    bar = tqdm(range(1, max_epochs + 1), desc=description, disable=None if progress else True, leave=False)
    for epoch in bar:
        beta = min(1.0, epoch / max(1, warmup_epochs))
        model.train()
        order = torch.randperm(n_train, generator=generator).to(x_train.device)
        total = 0.0
        for start in range(0, n_train, batch_size):
            batch = x_train[order[start : start + batch_size]]
            optimiser.zero_grad(set_to_none=True)
            out = model(batch, beta=beta)
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimiser.step()
            total += float(out["loss"].detach()) * batch.shape[0]
        history.train_loss.append(total / n_train)
        model.eval()
        with torch.no_grad():
            val = model(x_val, beta=1.0)
        elbo = -float(val["loss"])
        history.val_elbo.append(elbo)
        history.n_epochs = epoch
        bar.set_postfix(loss=f"{history.train_loss[-1]:.1f}", val_elbo=f"{elbo:.1f}", refresh=False)
        if epoch < warmup_epochs:
            continue
        if elbo > history.best_val_elbo:
            history.best_val_elbo, history.best_epoch = elbo, epoch
            best_state = copy.deepcopy(model.state_dict())
            since_best = 0
        else:
            since_best += 1
            if since_best >= patience:
                history.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
