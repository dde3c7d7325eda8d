"""Attributions through a fitted VAE: decoder Jacobian (finite differences) and Integrated Gradients.

Both work against :class:`VaeHandle`, the small interface ``isograph.backends.vae.load_vae``
returns, so they can be tested with any tiny torch module of the same shape.

- **Decoder Jacobian** (seed 003): at the mean latent code of the samples, the module's
  latent dimension ``d`` is moved by ``+-h``; ``decoded_delta = (dec(z + h e_d) -
  dec(z - h e_d)) / 2h`` per feature, multiplied by the sign of corr(z_d, eigengene) so that
  a positive value means "rises with the module". Genes pass as high-confidence drivers when
  (1) the association q value <= the FDR threshold, (2) |decoded_delta| is in the top
  percentile among module genes, and (3) sign(decoded_delta) == sign(r).
- **Integrated Gradients** (Captum): attribution of the (sign-corrected) module latent mean
  ``z_d(x)`` to each input feature, from a ``zero`` or ``mean`` baseline; the per-sample
  attributions sum to ``z_d(x) - z_d(baseline)`` (completeness), and ``ig_score`` is their
  mean over samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

from omicsrun import InputError

if TYPE_CHECKING:
    import torch

    from isograph.explain.core import ExplainConfig, ExplainResult


class VaeHandle(Protocol):
    """What explain needs from a fitted VAE."""

    feature_ids: Sequence[str]
    module_latent_dims: Mapping[str, int]

    def encoder_mean(self, x: torch.Tensor) -> torch.Tensor:
        """(n, n_features) -> latent means (n, n_latent)."""
        ...

    def decoder(self, z: torch.Tensor) -> torch.Tensor:
        """(n, n_latent) -> reconstructed features (n, n_features)."""
        ...


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        msg = "VAE attributions need PyTorch; install it with: pip install 'isograph[vae]'"
        raise InputError(msg) from None
    return torch


def _direction(handle: VaeHandle, x: np.ndarray, dim: int, eigengene: np.ndarray) -> tuple[float, np.ndarray]:
    torch = _torch()
    with torch.no_grad():
        z = handle.encoder_mean(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    r = np.corrcoef(z[:, dim], eigengene)[0, 1]
    return (1.0 if not np.isfinite(r) or r >= 0 else -1.0), z


def decoder_jacobian(handle: VaeHandle, z0: np.ndarray, dim: int, *, step: float = 0.5) -> np.ndarray:
    """Central finite difference of the decoder along latent ``dim`` at ``z0`` (shape (n_latent,)).

    Returns
    -------
    numpy.ndarray
        d decoder / d z_dim, shape (n_features,).
    """
    torch = _torch()
    if not step > 0:
        msg = f"finite-difference step must be > 0; found {step}"
        raise InputError(msg)
    plus, minus = np.array(z0, dtype=np.float64), np.array(z0, dtype=np.float64)
    plus[dim] += step
    minus[dim] -= step
    with torch.no_grad():
        both = handle.decoder(torch.as_tensor(np.vstack([plus, minus]), dtype=torch.float32)).double().numpy()
    return (both[0] - both[1]) / (2.0 * step)


def _gene_of(feature_ids: Sequence[str]) -> np.ndarray:
    return np.array([str(f).split(":")[0] for f in feature_ids])


def vae_drivers(
    handle: VaeHandle,
    x: np.ndarray,
    eigengene: np.ndarray,
    drivers: pd.DataFrame,
    module_id: str,
    *,
    fdr_threshold: float = 0.05,
    percentile_threshold: float = 90.0,
    step: float = 0.5,
) -> pd.DataFrame:
    """Decoder-Jacobian attribution of one module with the seed's three criteria.

    Parameters
    ----------
    x
        Inputs in ``handle.feature_ids`` order, shape (n_samples, n_features).
    eigengene
        Shape (n_samples,).
    drivers
        The module's gene driver table (``gene_id``, ``r``, ``qvalue``, ``in_module``).

    Returns
    -------
    pandas.DataFrame
        ``gene_id``, ``gene_name``, ``feature_id``, ``decoded_delta`` (direction-corrected),
        ``abs_delta``, ``r``, ``qvalue``, ``passes_fdr``, ``passes_percentile``,
        ``sign_agrees``, ``high_confidence``; one row per module gene, by |delta|.
    """
    if module_id not in handle.module_latent_dims:
        known = sorted(handle.module_latent_dims)
        msg = f"the VAE has no latent dimension for module {module_id!r}; it maps {known}"
        raise InputError(msg)
    dim = int(handle.module_latent_dims[module_id])
    sign, z = _direction(handle, x, dim, eigengene)
    delta = sign * decoder_jacobian(handle, z.mean(axis=0), dim, step=step)
    table = pd.DataFrame(
        {
            "feature_id": list(map(str, handle.feature_ids)),
            "gene_id": _gene_of(handle.feature_ids),
            "decoded_delta": delta,
        }
    )
    table["abs_delta"] = table["decoded_delta"].abs()
    # One row per gene: its feature with the largest decoded change.
    table = table.loc[table.groupby("gene_id")["abs_delta"].idxmax()]
    info = drivers.set_index("gene_id")
    module_genes = info.index[info["in_module"]] if "in_module" in info.columns else info.index
    table = table[table["gene_id"].isin(module_genes)].copy()
    table["gene_name"] = table["gene_id"].map(info["gene_name"]) if "gene_name" in info.columns else None
    table["r"] = table["gene_id"].map(info["r"]).astype(np.float64)
    table["qvalue"] = table["gene_id"].map(info["qvalue"]).astype(np.float64)
    cut = np.percentile(table["abs_delta"], percentile_threshold) if len(table) else np.inf
    table["passes_fdr"] = table["qvalue"] <= fdr_threshold
    table["passes_percentile"] = table["abs_delta"] >= cut
    table["sign_agrees"] = np.sign(table["decoded_delta"]) == np.sign(table["r"])
    table["high_confidence"] = table["passes_fdr"] & table["passes_percentile"] & table["sign_agrees"]
    columns = ["gene_id", "gene_name", "feature_id", "decoded_delta", "abs_delta", "r", "qvalue"]
    columns += ["passes_fdr", "passes_percentile", "sign_agrees", "high_confidence"]
    return table.sort_values("abs_delta", ascending=False)[columns].reset_index(drop=True)


def integrated_gradients(
    handle: VaeHandle,
    x: np.ndarray,
    dim: int,
    *,
    baseline: Literal["zero", "mean"] = "zero",
    n_steps: int = 100,
    sign: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Captum Integrated Gradients of ``sign * z_dim(x)`` with respect to every input feature.

    Returns
    -------
    attributions
        Shape (n_samples, n_features).
    delta
        Captum's convergence delta per sample (completeness error), shape (n_samples,).
    """
    torch = _torch()
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        msg = "--integrated-gradients needs Captum; install it with: pip install 'isograph[torch-explain]'"
        raise InputError(msg) from None
    inputs = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if baseline == "zero":
        base = torch.zeros_like(inputs)
    else:
        base = inputs.mean(dim=0, keepdim=True).expand_as(inputs).clone()

    def forward(values: Any) -> Any:
        return sign * handle.encoder_mean(values)[:, dim]

    ig = IntegratedGradients(forward)
    attributions, delta = ig.attribute(
        inputs, baselines=base, n_steps=n_steps, method="gausslegendre", return_convergence_delta=True
    )
    return attributions.detach().double().numpy(), delta.detach().double().numpy()


def ig_table(handle: VaeHandle, attributions: np.ndarray, drivers: pd.DataFrame) -> pd.DataFrame:
    """IG table: ``feature_id``, ``gene_id``, ``gene_name``, ``ig_score`` (mean), ``ig_abs_mean``."""
    names = (
        drivers.set_index("gene_id")["gene_name"]
        if "gene_name" in drivers.columns
        else pd.Series(dtype=object)
    )
    table = pd.DataFrame(
        {
            "feature_id": list(map(str, handle.feature_ids)),
            "gene_id": _gene_of(handle.feature_ids),
            "ig_score": attributions.mean(axis=0),
            "ig_abs_mean": np.abs(attributions).mean(axis=0),
        }
    )
    table.insert(2, "gene_name", table["gene_id"].map(names))
    return table.reindex(table["ig_score"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def load_handle(artifact_dir: Path) -> VaeHandle:
    """The fit folder's VAE, through ``isograph.backends.vae.load_vae``."""
    import importlib

    try:
        load_vae = importlib.import_module("isograph.backends.vae").load_vae
    except (ImportError, AttributeError):
        msg = (
            "VAE attributions need the VAE backend (isograph.backends.vae.load_vae), which this "
            "installation lacks; fit with --backend vae on a build that has it"
        )
        raise InputError(msg) from None
    handle: VaeHandle = load_vae(artifact_dir)
    return handle


def attach_attributions(
    results: dict[str, ExplainResult],
    *,
    vae: VaeHandle | None,
    artifact_dir: Path,
    inputs: pd.DataFrame,
    config: ExplainConfig,
) -> None:
    """Fill ``vae_drivers`` and/or ``ig_attributions`` of every result in place."""
    handle = vae if vae is not None else load_handle(artifact_dir)
    wanted = list(map(str, handle.feature_ids))
    absent = pd.Index(wanted).difference(pd.Index(inputs.columns.astype(str)))
    if len(absent):
        msg = (
            f"the VAE's inputs include {len(absent)} feature(s) absent from the feature table, "
            f"e.g. {absent[0]!r}"
        )
        raise InputError(msg)
    for module_id, result in results.items():
        eigengene = result.eigengene
        x = inputs.loc[eigengene.index, wanted].to_numpy(dtype=np.float64)
        e = eigengene.to_numpy(dtype=np.float64)
        if config.vae_attribution:
            table = vae_drivers(
                handle,
                x,
                e,
                result.gene_driver_table,
                module_id,
                fdr_threshold=config.vae_fdr_threshold,
                percentile_threshold=config.vae_percentile_threshold,
                step=config.vae_step,
            )
            # Seed 001's names alongside seed 003's: the feature type and decoded_response.
            table["feature_type"] = table["feature_id"].str.rsplit(":", n=1).str[-1]
            table["decoded_response"] = table["decoded_delta"]
            result.vae_drivers = table
        if config.integrated_gradients:
            if module_id not in handle.module_latent_dims:
                msg = f"the VAE has no latent dimension for module {module_id!r}"
                raise InputError(msg)
            dim = int(handle.module_latent_dims[module_id])
            sign, z = _direction(handle, x, dim, e)
            attributions, _ = integrated_gradients(
                handle, x, dim, baseline=config.ig_baseline, n_steps=config.ig_n_steps, sign=sign
            )
            table = ig_table(handle, attributions, result.gene_driver_table)
            # Seed 001's columns: mean_ig / mean_abs_ig, the latent dimension and its r with the eigengene.
            table["mean_ig"] = table["ig_score"]
            table["mean_abs_ig"] = table["ig_abs_mean"]
            table["latent_dim"] = dim
            table["latent_eigengene_r"] = float(np.corrcoef(z[:, dim], e)[0, 1])
            result.ig_attributions = table
