"""Helpers for tests: the shared real-data folder beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_data_dir() -> Path:
    """``$SHARED_DATA_DIR`` or ``<repo>/../shared/data``."""
    env = os.environ.get("SHARED_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def require_shared(relpath: str) -> Path:
    """Path to a shared data file; under CI (``CI=true``) a missing file fails, elsewhere it skips."""
    path = shared_data_dir() / relpath
    if not path.exists():
        msg = f"shared data file missing: {path}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    return path
