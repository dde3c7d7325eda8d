"""The one place the VAE backend imports PyTorch (so IsoGraph runs its other backends without it)."""

from __future__ import annotations

from typing import Any

from omicsrun import InputError

INSTALL_HINT = (
    "the vae backend needs PyTorch, which is not installed; install it with "
    "`pip install 'isograph[vae]'` (or a torch build for your CPU/GPU from pytorch.org), "
    "or choose another backend (--backend baseline)"
)


def require_torch() -> Any:
    """Import and return ``torch``, or raise :class:`InputError` saying what to install."""
    try:
        import torch
    except ModuleNotFoundError as err:
        if err.name not in {"torch", None}:
            raise
        raise InputError(INSTALL_HINT) from None
    return torch


def resolve_device(torch: Any, device: str) -> Any:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an input error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        msg = "vae.device=cuda but no CUDA device is available; use vae.device=auto or cpu"
        raise InputError(msg)
    return torch.device(device)
