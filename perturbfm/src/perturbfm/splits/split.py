"""The frozen :class:`Split` and its canonical JSON form (the content its hash is taken over)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omicsrun import InputError
from omicsrun.hashing import sha256_json

SPLIT_FORMAT = "perturbfm-split"
SPLIT_FORMAT_VERSION = 2
"""2 added ``ood_val_idx`` (the OOD-validation part); version 1 files still load, without it."""
_INDEX_FIELDS = ("train_idx", "val_idx", "test_idx", "unused_idx", "ood_val_idx", "metric_genes")


@dataclass(frozen=True, eq=False)
class Split:
    """A train/val/test partition of a dataset's rows, fixed by its content hash.

    Attributes
    ----------
    spec
        Resolved spec: ``name`` plus every parameter with its default filled in.
    seed
        Seed of every random choice.
    data_hash
        :func:`perturbfm.data.artifact.dataset_hash` of the dataset it indexes.
    train_idx, val_idx, test_idx
        Sorted int64 row indices into the dataset, control rows included; disjoint.
    ood_axes
        Axis -> held-out values, e.g. ``{"context": ["U87MG"]}`` or
        ``{"perturbation": [...]}``.
    labels
        Spec-specific labels: for ``combo`` ``{combo pert_id: n singles in train}``; for
        ``covariate_transfer`` ``{pert_id: [held-out contexts]}``; for context splits
        ``{context: number of test rows}``; for ``perturbation_ood``
        ``{pert_id: number of test rows}``.
    metric_genes
        Sorted int64 gene indices metrics use: the top ``spec["n_hvg"]`` genes by variance of
        ``X_pert`` over the training rows only.
    ood_val_idx
        OOD-validation rows (format 2): perturbed cells of held-out units of the same kind
        as the test axis (perturbations, combinations, (perturbation, context) pairs) that
        are not in test and not in training; for early stopping, model selection and
        conformal calibration. Empty in a format-1 split.
    format_version
        Format the split was written in (1 files are read as they are, hash included).
    unused_idx
        Control rows in no part: the test quarter of the controls of contexts that hold no
        test perturbation (kept out of train so every context trains on half its controls,
        and out of test so the test set holds only contexts under test).
    frozen_hash
        SHA-256 of the canonical JSON of everything above (:meth:`content`).
    """

    spec: dict[str, Any]
    seed: int
    data_hash: str
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    ood_axes: dict[str, list[str]]
    labels: dict[str, Any]
    metric_genes: np.ndarray
    unused_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ood_val_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    format_version: int = SPLIT_FORMAT_VERSION
    frozen_hash: str = ""

    def __post_init__(self) -> None:
        for name in _INDEX_FIELDS:
            arr = np.asarray(getattr(self, name), dtype=np.int64).reshape(-1)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        parts = np.concatenate(
            [self.train_idx, self.val_idx, self.test_idx, self.unused_idx, self.ood_val_idx]
        )
        if np.unique(parts).size != parts.size:
            msg = "split parts overlap: a row appears in more than one of train/val/test/unused/ood_val"
            raise InputError(msg)
        digest = sha256_json(self.content())
        if self.frozen_hash and self.frozen_hash != digest:
            msg = (
                f"split content hashes to {digest[:12]}..., "
                f"not to its recorded hash {self.frozen_hash[:12]}..."
            )
            raise InputError(msg)
        object.__setattr__(self, "frozen_hash", digest)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def require_ood_val(self, what: str) -> np.ndarray:
        """``ood_val_idx``, or InputError saying why a format-1 split lacks it."""
        if self.format_version < 2:
            msg = (
                f"split {self.frozen_hash[:12]} is format v{self.format_version}: it has no OOD-validation "
                f"part, which {what} needs; recreate it with 'perturbfm splits create' (same spec and seed)"
            )
            raise InputError(msg)
        return self.ood_val_idx

    def content(self) -> dict[str, Any]:
        """Everything the hash covers, as plain JSON values."""
        extra = {"ood_val_idx": self.ood_val_idx.tolist()} if self.format_version >= 2 else {}
        return {
            "format": SPLIT_FORMAT,
            "format_version": self.format_version,
            "spec": self.spec,
            "seed": int(self.seed),
            "data_hash": self.data_hash,
            "train_idx": self.train_idx.tolist(),
            "val_idx": self.val_idx.tolist(),
            "test_idx": self.test_idx.tolist(),
            "unused_idx": self.unused_idx.tolist(),
            **extra,
            "ood_axes": self.ood_axes,
            "labels": self.labels,
            "metric_genes": self.metric_genes.tolist(),
        }

    def to_dict(self) -> dict[str, Any]:
        """:meth:`content` plus ``frozen_hash`` (what the store writes)."""
        return {**self.content(), "frozen_hash": self.frozen_hash}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        """Rebuild a split; its recorded ``frozen_hash`` must match its content."""
        if data.get("format") != SPLIT_FORMAT:
            msg = f"not a PerturbFM split: format {data.get('format')!r}, expected {SPLIT_FORMAT!r}"
            raise InputError(msg)
        version = data.get("format_version")
        if not isinstance(version, int) or version > SPLIT_FORMAT_VERSION:
            msg = f"split format_version {version!r}; this PerturbFM reads <= {SPLIT_FORMAT_VERSION}"
            raise InputError(msg)
        try:
            return cls(
                spec=dict(data["spec"]),
                seed=int(data["seed"]),
                data_hash=str(data["data_hash"]),
                train_idx=np.asarray(data["train_idx"], dtype=np.int64),
                val_idx=np.asarray(data["val_idx"], dtype=np.int64),
                test_idx=np.asarray(data["test_idx"], dtype=np.int64),
                unused_idx=np.asarray(data.get("unused_idx", []), dtype=np.int64),
                ood_val_idx=np.asarray(data.get("ood_val_idx", []) if version >= 2 else [], dtype=np.int64),
                format_version=version,
                ood_axes=dict(data["ood_axes"]),
                labels=dict(data["labels"]),
                metric_genes=np.asarray(data["metric_genes"], dtype=np.int64),
                frozen_hash=str(data.get("frozen_hash", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, InputError):
                raise
            msg = f"malformed split record ({type(err).__name__}: {err})"
            raise InputError(msg) from None

    def summary(self) -> dict[str, Any]:
        """Short description: spec, sizes, axes (for ``splits list/show``)."""
        return {
            "split_hash": self.frozen_hash,
            "spec": self.spec,
            "seed": self.seed,
            "data_hash": self.data_hash,
            "n_train": int(self.train_idx.size),
            "n_val": int(self.val_idx.size),
            "n_test": int(self.test_idx.size),
            "n_unused": int(self.unused_idx.size),
            "n_ood_val": int(self.ood_val_idx.size),
            "format_version": self.format_version,
            "n_metric_genes": int(self.metric_genes.size),
            "ood_axes": self.ood_axes,
        }
