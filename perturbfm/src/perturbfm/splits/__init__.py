"""Immutable, hash-locked splits: :func:`create_split`, :class:`Split`, :class:`SplitStore`."""

from perturbfm.splits.create import (
    SPEC_NAMES,
    SpecName,
    create_split,
    loco_specs,
    resolve_spec,
    spec_parameters,
)
from perturbfm.splits.split import Split
from perturbfm.splits.store import SPLIT_DIR_ENV, SplitStore, default_split_dir

__all__ = [
    "SPEC_NAMES",
    "SPLIT_DIR_ENV",
    "SpecName",
    "Split",
    "SplitStore",
    "create_split",
    "default_split_dir",
    "loco_specs",
    "resolve_spec",
    "spec_parameters",
]
