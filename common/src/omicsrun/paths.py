"""Where the shared real-data folder is (used at run time, so it must not import test tooling)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_data_dir() -> Path:
    """``$SHARED_DATA_DIR`` or ``<repo>/../shared/data``."""
    env = os.environ.get("SHARED_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
