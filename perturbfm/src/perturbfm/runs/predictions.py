"""The ``predictions.npz`` file: ``mean`` and ``var`` (n, n_genes) and ``idx`` (n,) dataset rows."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from omicsrun import InputError

PREDICTION_KEYS = ("mean", "var", "idx")


def predictions_bytes(mean: np.ndarray, var: np.ndarray, idx: np.ndarray) -> bytes:
    """``predictions.npz`` content (float32 mean/var, int64 idx), for an atomic write."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        mean=np.asarray(mean, dtype=np.float32),
        var=np.asarray(var, dtype=np.float32),
        idx=np.asarray(idx, dtype=np.int64),
    )
    return buf.getvalue()


def load_predictions(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a predictions file; InputError when missing, unreadable or lacking a key.

    Returns
    -------
    dict
        ``mean`` and ``var`` (n, n_genes) and ``idx`` (n,), as stored (validated later
        against the split by :func:`perturbfm.eval.validate_predictions`).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"predictions file {path} does not exist"
        raise InputError(msg)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in PREDICTION_KEYS if k not in npz.files]
            if missing:
                msg = (
                    f"predictions file {path} has no array {missing[0]!r}; "
                    f"expected {list(PREDICTION_KEYS)}, found {npz.files}"
                )
                raise InputError(msg)
            return {k: np.asarray(npz[k]) for k in PREDICTION_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        msg = f"cannot read {path} as a .npz predictions file ({type(err).__name__}: {err})"
        raise InputError(msg) from None
