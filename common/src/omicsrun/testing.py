"""Helpers for tests: the shared real-data folder beside the repository, a concurrent writer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from omicsrun.commit import hold
from omicsrun.paths import REPO_ROOT, shared_data_dir

__all__ = ["REPO_ROOT", "another_writer", "require_shared", "shared_data_dir"]


@contextlib.contextmanager
def another_writer(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the output lock on ``path`` as a concurrent run would (:func:`omicsrun.commit.hold`).

    Inside the block a command writing ``path`` must be refused as busy; afterwards ``path``
    is as it was (nothing is written).
    """
    with hold(path, what="output"):
        yield


def require_shared(relpath: str) -> Path:
    """Path to a shared data file; under CI (``CI=true``) a missing file fails, elsewhere it skips."""
    path = shared_data_dir() / relpath
    if not path.exists():
        msg = f"shared data file missing: {path}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    return path
