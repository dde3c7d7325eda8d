"""Perturbation labels checked at import: what would otherwise be accepted silently.

A label that differs from the control only by case or whitespace (``"Control "``), a
combination naming the control (``"control+KLF1"``), an empty label or component
(``""``, ``"KLF1+"``) and padded components (``" KLF1"``, a different id than ``"KLF1"``)
are refused with one line naming an example and how many cells carry such labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from omicsrun import InputError


def _norm(text: str) -> str:
    return text.strip().casefold()


def check_pert_labels(labels: Sequence[str] | np.ndarray, control_label: str, *, pert_key: str) -> None:
    """Refuse malformed perturbation labels (see the module docstring).

    Parameters
    ----------
    labels
        One label per cell, shape (n_cells,).
    control_label
        The exact label of control cells.
    pert_key
        The obs column the labels came from (for messages).

    Raises
    ------
    InputError
        Naming the first offending label, the rule it breaks, and the number of cells.
    """
    if not control_label.strip():
        msg = f"--control must be a non-empty label; found {control_label!r}"
        raise InputError(msg)
    codes, uniques = pd.factorize(pd.Series(np.asarray(labels, dtype=object)).astype(str))
    counts = np.bincount(codes, minlength=len(uniques))
    control = _norm(control_label)
    for i, label in enumerate(map(str, uniques)):
        if label == control_label:
            continue
        problem = None
        parts = label.split("+")
        if not label.strip():
            problem = "is empty"
        elif _norm(label) == control:
            problem = f"differs from the control label {control_label!r} only by case or whitespace"
        elif any(not p.strip() for p in parts):
            problem = "has an empty component (expected gene names joined by '+', e.g. 'A+B')"
        elif any(_norm(p) == control for p in parts):
            problem = f"names the control {control_label!r} as a perturbed gene"
        elif any(p != p.strip() for p in parts):
            problem = "has spaces around a gene name (it would be a different perturbation id)"
        if problem is not None:
            msg = f"obs[{pert_key!r}] label {label!r} {problem}; {counts[i]} cell(s) carry it"
            raise InputError(msg)


def check_matrix_size(n_cells: int, n_genes: int, *, source: str) -> None:
    """Refuse an expression matrix without cells or without genes."""
    if n_cells == 0 or n_genes == 0:
        msg = f"{source} holds {n_cells} cells x {n_genes} genes; expected at least one of each"
        raise InputError(msg)
