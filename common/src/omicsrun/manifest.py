"""What every output folder records about how it was made."""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

_DEFAULT_PACKAGES = ("numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "anndata", "torch", "matplotlib")


def package_versions(packages: Iterable[str] = ()) -> dict[str, str | None]:
    """Installed versions of ``packages`` plus the core numeric stack (``None`` when absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in (*_DEFAULT_PACKAGES, *packages):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def run_manifest(
    *,
    tool: str,
    config: dict[str, Any],
    seed: int | None,
    data_hash: str | None,
    packages: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record written beside every run: config, seed, data hash, versions."""
    record: dict[str, Any] = {
        "tool": tool,
        "created_utc": utc_now(),
        "config": config,
        "seed": seed,
        "data_hash": data_hash,
        "versions": package_versions((tool, *packages)),
        "platform": platform.platform(),
        "argv": list(sys.argv),
    }
    if extra:
        record.update(extra)
    return record
