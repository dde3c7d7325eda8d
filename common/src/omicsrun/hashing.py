"""Content hashes (SHA-256) of files, folders, arrays and JSON-able values."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of one file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_files(
    paths: Iterable[str | os.PathLike[str]], *, root: str | os.PathLike[str] | None = None
) -> str:
    """One digest over several files: each file's name (relative to ``root``) and content digest."""
    digest = hashlib.sha256()
    base = Path(root) if root is not None else None
    for path in sorted(Path(p) for p in paths):
        name = path.relative_to(base).as_posix() if base is not None else path.name
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def sha256_dir(path: str | os.PathLike[str]) -> str:
    """Digest of every regular file under a folder (names and contents; hidden files skipped)."""
    root = Path(path)
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return sha256_files(files, root=root)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    from omicsrun.atomic import _json_default, _nan_to_none

    return json.dumps(_nan_to_none(obj), sort_keys=True, separators=(",", ":"), default=_json_default)


def sha256_json(obj: Any) -> str:
    """SHA-256 of a value's canonical JSON."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def sha256_array(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-ordered bytes."""
    arr = np.ascontiguousarray(array)
    digest = hashlib.sha256()
    digest.update(str(arr.dtype).encode())
    digest.update(str(arr.shape).encode())
    digest.update(arr.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()
