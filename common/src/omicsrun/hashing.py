"""Content hashes (SHA-256) of files, folders, arrays and JSON-able values."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

_CHUNK = 1 << 20
_POOL: ThreadPoolExecutor | None = None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of one file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# A file's digest is remembered by its identity and state (device, inode, size, mtime, ctime),
# as DVC and git do, so a large artifact is not re-read by every command. An entry is written
# only for a file whose timestamps are at least this old when hashed: a later change then
# necessarily gets a newer ctime (file timestamps tick coarsely, so a change within the same
# tick as the hashing could otherwise keep them equal; git's "racy clean" problem).
_SETTLED_NS = 2_000_000_000


def _digest_cache_dir() -> Path | None:
    if os.environ.get("OMICSRUN_DIGEST_CACHE", "1").lower() in ("0", "false", "no", "off"):
        return None
    if os.environ.get("OMICSRUN_CACHE_DIR"):
        return Path(os.environ["OMICSRUN_CACHE_DIR"]) / "sha256"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "omicsrun" / "sha256"


def _state(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def sha256_file_cached(path: str | os.PathLike[str]) -> str:
    """:func:`sha256_file`, remembered per file state (see ``_SETTLED_NS``).

    The entry lives under ``$OMICSRUN_CACHE_DIR/sha256/`` or else
    ``$XDG_CACHE_HOME/omicsrun/sha256/`` (``~/.cache`` by default);
    ``OMICSRUN_DIGEST_CACHE=0`` turns the cache off. Any write, truncation, replacement,
    rename or ``chmod`` of the file changes its ctime and so forces a full re-hash; an
    unreadable or unwritable cache only costs the re-hash.
    """
    import json
    import time

    path = Path(path).resolve()
    folder = _digest_cache_dir()
    before = path.stat()
    entry = None
    if folder is not None:
        entry = folder / hashlib.sha256(str(path).encode()).hexdigest()
        try:
            cached = json.loads(entry.read_text(encoding="utf-8"))
            if cached.get("state") == _state(before) and isinstance(cached.get("sha256"), str):
                return str(cached["sha256"])
        except (OSError, ValueError, AttributeError):
            pass
    digest = sha256_file(path)
    after = path.stat()
    settled = time.time_ns() - _SETTLED_NS
    unchanged = _state(after) == _state(before)
    if entry is not None and unchanged and max(after.st_mtime_ns, after.st_ctime_ns) < settled:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"path": str(path), "state": _state(after), "sha256": digest}))
            tmp.replace(entry)
        except OSError:
            pass
    return digest


def sha256_file_async(path: str | os.PathLike[str], *, cached: bool = False) -> Future[str]:
    """:func:`sha256_file` (or :func:`sha256_file_cached`) on a background thread;
    ``.result()`` gives the digest (or raises).

    File reads and ``hashlib`` updates release the GIL, so a large file is hashed on another
    core while the caller goes on (reading a dataset, computing metrics). Two threads at most,
    and one core is left to the caller (on a 2-core machine the files are hashed one after
    the other, beside it rather than in its way).
    """
    global _POOL  # one pool per process, made on first use
    if _POOL is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(2, cores - 1)), thread_name_prefix="sha256")
    return _POOL.submit(sha256_file_cached if cached else sha256_file, path)


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
    from omicsrun.atomic import json_text

    return json_text(obj, separators=(",", ":"))


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
