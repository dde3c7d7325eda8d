"""Run ids: ``<UTCYYYYMMDD-HHMMSS>_<splitHash7>_<modelName>_<configHash7>``, sortable and traceable."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def make_run_id(*, split_hash: str, model_name: str, config_hash: str, now: datetime | None = None) -> str:
    """The run id for a run started at ``now`` (UTC; the current time when None)."""
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    name = _SAFE.sub("-", model_name).strip("-") or "model"
    return f"{when:%Y%m%d-%H%M%S}_{split_hash[:7]}_{name}_{config_hash[:7]}"


def unique_run_dir(runs_root: str | os.PathLike[str], run_id: str) -> Path:
    """``runs_root/run_id``, or ``run_id-2``, ``-3``... when taken: runs are never overwritten."""
    root = Path(runs_root)
    candidate, k = root / run_id, 1
    while candidate.exists():
        k += 1
        candidate = root / f"{run_id}-{k}"
    return candidate
