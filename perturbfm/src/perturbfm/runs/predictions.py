"""The ``predictions.npz`` file: ``mean`` and ``var`` (n, n_genes) and ``idx`` (n,) dataset rows.

Optionally also ``val_mean``, ``val_var`` (n_val, n_genes) and ``val_idx`` (n_val,): predictions
for the split's non-control validation rows (in-distribution held-out cells), which the
uncertainty panel uses as the in-distribution side of its OOD AUROC.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from omicsrun import InputError

PREDICTION_KEYS = ("mean", "var", "idx")
VAL_KEYS = ("val_mean", "val_var", "val_idx")


def predictions_bytes(
    mean: np.ndarray,
    var: np.ndarray,
    idx: np.ndarray,
    *,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    val_idx: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> bytes:
    """``predictions.npz`` content (float32 mean/var, int64 idx), for an atomic write.

    ``val`` (mean, var) with ``val_idx`` adds the validation-row predictions; ``extra`` adds
    more arrays aligned with ``idx`` (a model run's ``var_aleatoric``, ``var_epistemic``,
    ``var_conformal``), stored as float32.
    """
    arrays: dict[str, np.ndarray] = {
        "mean": np.asarray(mean, dtype=np.float32),
        "var": np.asarray(var, dtype=np.float32),
        "idx": np.asarray(idx, dtype=np.int64),
    }
    if val is not None and val_idx is not None:
        arrays["val_mean"] = np.asarray(val[0], dtype=np.float32)
        arrays["val_var"] = np.asarray(val[1], dtype=np.float32)
        arrays["val_idx"] = np.asarray(val_idx, dtype=np.int64)
    for key, value in (extra or {}).items():
        arrays[key] = np.asarray(value, dtype=np.float32)
    buf = io.BytesIO()
    # numpy stubs: a **dict could hold the bool allow_pickle keyword; these keys never do
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def load_predictions(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a predictions file; InputError when missing, unreadable or lacking a key.

    Returns
    -------
    dict
        ``mean`` and ``var`` (n, n_genes) and ``idx`` (n,) (plus the ``val_*`` arrays when
        present), as stored (validated later
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
            out = {k: np.asarray(npz[k]) for k in PREDICTION_KEYS}
            present = [k for k in VAL_KEYS if k in npz.files]
            if present and len(present) != len(VAL_KEYS):
                msg = f"predictions file {path} has {present} but not all of {list(VAL_KEYS)}"
                raise InputError(msg)
            out.update({k: np.asarray(npz[k]) for k in present})
            return out
    except InputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        msg = f"cannot read {path} as a .npz predictions file ({type(err).__name__}: {err})"
        raise InputError(msg) from None
