"""The ``predictions.npz`` file: ``mean`` and optional ``var`` (n, n_genes) and ``idx`` (n,) dataset rows.

Without ``var`` (a point prediction) the uncertainty panel is marked absent, not faked.

Optionally also ``val_mean``, ``val_var`` (n_val, n_genes) and ``val_idx`` (n_val,): predictions
for the split's non-control validation rows (in-distribution held-out cells), which the
uncertainty panel uses as the in-distribution side of its OOD AUROC.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from omicsrun import InputError
from omicsrun.readers import load_npz

PREDICTION_KEYS = ("mean", "idx")
OPTIONAL_KEYS = ("var",)
VAL_KEYS = ("val_mean", "val_var", "val_idx")


def write_predictions(
    path: str | os.PathLike[str],
    mean: np.ndarray,
    var: np.ndarray | None,
    idx: np.ndarray,
    *,
    val: tuple[np.ndarray, np.ndarray | None] | None = None,
    val_idx: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``predictions.npz`` straight to ``path`` (inside a run's temporary folder).

    float32 ``mean``/``var`` and int64 ``idx``; ``var`` None (a point prediction) leaves
    ``var`` and the validation rows out; ``val`` (mean, var) with ``val_idx`` adds the
    validation-row predictions, ``extra`` more float32 arrays aligned with ``idx`` (a model
    run's ``var_aleatoric``, ``var_epistemic``, ``var_conformal``). Uncompressed and
    streamed array by array: at Replogle scale the file is GBs of float32 noise that zlib
    barely shrinks, and compressing it dominated the run time and memory (the whole archive
    was built in memory).
    """
    arrays: dict[str, np.ndarray] = {
        "mean": np.asarray(mean, dtype=np.float32),
        "idx": np.asarray(idx, dtype=np.int64),
    }
    if var is not None:
        arrays["var"] = np.asarray(var, dtype=np.float32)
    if val is not None and val_idx is not None and var is not None and val[1] is not None:
        arrays["val_mean"] = np.asarray(val[0], dtype=np.float32)
        arrays["val_var"] = np.asarray(val[1], dtype=np.float32)
        arrays["val_idx"] = np.asarray(val_idx, dtype=np.int64)
    for key, value in (extra or {}).items():
        arrays[key] = np.asarray(value, dtype=np.float32)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return Path(path)


def load_predictions(path: str | os.PathLike[str], *, mean_only: bool = False) -> dict[str, np.ndarray]:
    """Read a predictions file; InputError when missing, unreadable or lacking a key.

    ``mean_only`` reads ``mean`` and ``idx`` alone, leaving the variances on disk (a metric
    selection without uncertainty).

    Returns
    -------
    dict
        ``mean`` and ``var`` (when present) (n, n_genes) and ``idx`` (n,) (plus the ``val_*``
        arrays when present), as stored (validated later
        against the split by :func:`perturbfm.eval.validate_predictions`).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"predictions file {path} does not exist"
        raise InputError(msg)
    arrays = load_npz(
        path,
        what="predictions file",
        required=PREDICTION_KEYS,
        only=PREDICTION_KEYS if mean_only else None,
        mmap=True,  # read from the page cache as the evaluator's blocks need them; no copy
    )
    if mean_only:
        return {k: np.asarray(arrays[k]) for k in PREDICTION_KEYS}
    out = {k: np.asarray(arrays[k]) for k in (*PREDICTION_KEYS, *OPTIONAL_KEYS) if k in arrays}
    present = [k for k in VAL_KEYS if k in arrays]
    if present and len(present) != len(VAL_KEYS):
        msg = f"predictions file {path} has {present} but not all of {list(VAL_KEYS)}"
        raise InputError(msg)
    out.update({k: np.asarray(arrays[k]) for k in present})
    return out
