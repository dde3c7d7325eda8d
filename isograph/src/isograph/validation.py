"""Checks at the edge of ``fit``: feature hyper-parameter ranges and finite trait values.

Override values arrive as text (``features.pseudocount=inf``); :func:`check_feature_config`
refuses values outside each field's valid range with the range in the message, and
:func:`check_trait_values` refuses infinite trait values, which the association tests would
otherwise drop (a trait that is all ``inf`` vanished from the trait table without a word).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from omicsrun import InputError
from omicsrun.validate import check_number

# field -> check_number bounds
FEATURE_RANGES: dict[str, dict[str, Any]] = {
    "pseudocount": {"low": 0, "low_open": True},
    "prior_count": {"low": 0, "low_open": True},
    "min_switch_transcripts": {"low": 2, "integer": True},
}


def check_feature_config(config: Any) -> Any:
    """Return the feature config when every field is a finite number in its range."""
    for field, value in asdict(config).items():
        bounds = FEATURE_RANGES.get(field)
        if bounds is not None:
            check_number(value, f"features.{field}", **bounds)
    return config


def check_trait_values(samples: pd.DataFrame, traits: Sequence[str]) -> None:
    """Refuse a numeric trait column holding ``inf``/``-inf`` (missing values stay allowed)."""
    for name in traits:
        if name not in samples.columns:
            continue  # an unknown trait is reported by the association step
        column = samples[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            msg = (
                f"trait {name!r} holds infinite values in {n_inf} of {values.size} samples; "
                "expected finite numbers (leave a value empty when it is missing)"
            )
            raise InputError(msg)
