"""Helpers for tests: the shared real-data folder beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omicsrun.paths import REPO_ROOT, shared_data_dir

__all__ = ["REPO_ROOT", "require_shared", "shared_data_dir"]


def require_shared(relpath: str) -> Path:
    """Path to a shared data file; under CI (``CI=true``) a missing file fails, elsewhere it skips."""
    path = shared_data_dir() / relpath
    if not path.exists():
        msg = f"shared data file missing: {path}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    return path
