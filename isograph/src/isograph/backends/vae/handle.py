"""Reading a fitted VAE back from a fit folder (for decoder attribution and Integrated Gradients)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isograph.backends.vae._torch import require_torch
from omicsrun import InputError


@dataclass(frozen=True, eq=False)
class VAEHandle:
    """A trained VAE, ready for attribution (CPU, eval mode, no gradients on its weights).

    Attributes
    ----------
    network
        The ``nn.Module`` (:class:`~isograph.backends.vae.network.FeatureVAE`).
    feature_ids
        ``"<gene_id>:switch"``/``"<gene_id>:abundance"``, the columns the network reads and
        writes, shape (n_features,), in the fit's feature order.
    feature_types
        ``"switch"``/``"abundance"`` per feature, shape (n_features,).
    module_latent_dims
        Module id -> the latent dimension that drives it (largest mean RMS decoder Jacobian
        over the module's features).
    active_dims
        Latent dimensions that did not collapse.
    config
        The backend config the model was fitted with.
    """

    network: Any
    feature_ids: np.ndarray
    feature_types: np.ndarray
    module_latent_dims: dict[str, int]
    active_dims: tuple[int, ...]
    config: dict[str, Any]

    @property
    def n_latent(self) -> int:
        return int(self.network.n_latent)

    def encoder_mean(self, x: Any) -> Any:
        """Posterior means ``z``, shape (batch, n_latent), of standardised features ``x`` (batch, n_features).

        ``x`` is what :func:`isograph.features.build_features` returns for the fitted bundle
        (``FeatureSet.matrix``), as a float32 tensor. Differentiable in ``x``.
        """
        mu, _ = self.network.encode(x)
        return mu

    def decoder(self, z: Any) -> Any:
        """Decoded features, shape (batch, n_features), of latent points ``z`` (batch, n_latent)."""
        return self.network.decode(z)

    def decoded(self, x: Any) -> Any:
        """``decoder(encoder_mean(x))``: the decoded signal module inference used."""
        return self.decoder(self.encoder_mean(x))


def load_vae(fit_dir: str | os.PathLike[str]) -> VAEHandle:
    """The VAE of a fit folder (``<fit_dir>/backend/vae_checkpoint.pt``).

    Raises
    ------
    InputError
        Torch missing, no checkpoint (the fit did not use ``--backend vae``), or a checkpoint
        of another format.
    """
    require_torch()
    from isograph.backends.vae.backend import CHECKPOINT_NAME
    from isograph.backends.vae.engine import build_network

    fit_dir = Path(fit_dir)
    candidates = [fit_dir / "backend" / CHECKPOINT_NAME, fit_dir / CHECKPOINT_NAME]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        msg = f"no VAE checkpoint in {fit_dir} (expected {candidates[0]}); fit with --backend vae first"
        raise InputError(msg)
    state = read_checkpoint(path)
    network = build_network(state["n_features"], state["n_latent"], state["n_hidden"], state["dropout"])
    network.load_state_dict(state["state_dict"])
    network.eval()
    network.requires_grad_(requires_grad=False)
    return VAEHandle(
        network=network,
        feature_ids=np.asarray(state["feature_ids"], dtype=object),
        feature_types=np.asarray(state["feature_types"], dtype=object),
        module_latent_dims=dict(zip(state["module_ids"], state["module_latent_dims"], strict=True)),
        active_dims=tuple(state["active_dims"]),
        config=dict(state["config"]),
    )


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint dictionary (weights only: no pickled code is executed), format-checked.

    Raises
    ------
    InputError
        When the file is missing or is not an IsoGraph VAE checkpoint of a version this reads.
    """
    torch = require_torch()
    from isograph.backends.vae.backend import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    if not Path(path).is_file():
        msg = f"expected a VAE checkpoint at {path}; found none"
        raise InputError(msg)
    state = torch.load(path, map_location="cpu", weights_only=True)
    found = state.get("format") if isinstance(state, dict) else type(state).__name__
    version = state.get("format_version") if isinstance(state, dict) else None
    if found != CHECKPOINT_FORMAT or version != CHECKPOINT_VERSION:
        msg = (
            f"{path}: expected format {CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION}; "
            f"found {found!r} version {version!r}"
        )
        raise InputError(msg)
    return dict(state)
