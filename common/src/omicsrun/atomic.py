"""Atomic writes: a reader never sees a half-written file or folder.

Files are written to a temporary sibling and renamed into place. Folders are assembled in a
temporary sibling folder and renamed into place only when everything inside succeeded, so a
failure leaves nothing behind and an earlier run is never silently replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omicsrun.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path) -> Path:
    # The name pattern omicsrun.commit recognises as a leftover of an interrupted write.
    name = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
    os.close(fd)
    return name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _clean_dead_file_temps(path: Path) -> None:
    # A temporary file of this name left by a killed process (its pid is gone) is removed.
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)-[0-9a-f]{{8}}\.tmp$")
    with contextlib.suppress(OSError):
        for item in path.parent.iterdir():
            match = pattern.match(item.name)
            if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
                item.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary sibling, fsync, rename).

    A temporary sibling of the same name left by a process that no longer exists is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_dead_file_temps(path)
    tmp = _tmp_sibling(path)
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, Paths and sets appear in configs and reports.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    msg = f"cannot write {type(value).__name__} to JSON"
    raise TypeError(msg)


def dumps_json(obj: Any, *, indent: int | None = 2) -> str:
    """Serialise ``obj`` to JSON with sorted keys, NaN written as ``null``."""
    return json_text(obj, indent=indent) + "\n"


def json_text(obj: Any, **options: Any) -> str:
    """``json.dumps(obj, sort_keys=True, **options)`` with NaN written as ``null``.

    Tried first as is, refusing non-finite floats (C speed, no copy); only a value holding
    NaN or infinity is rebuilt with NaN replaced, which gives the same text as rebuilding
    every value (the rebuilt copy took seconds on a 100,000-row obs table).
    """
    try:
        return json.dumps(obj, sort_keys=True, default=_json_default, allow_nan=False, **options)
    except ValueError:
        return json.dumps(_nan_to_none(obj), sort_keys=True, default=_json_default, **options)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:  # NaN is not valid JSON
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON atomically."""
    return write_text(path, dumps_json(obj, indent=indent))


def check_output_dir(path: str | os.PathLike[str], *, overwrite: bool = False, what: str = "output") -> Path:
    """Refuse an existing non-empty folder unless ``overwrite``; return the path.

    Raises
    ------
    InputError
        When ``path`` exists and is a file, or is a non-empty folder and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        msg = f"{what} folder {path} is a file; expected a folder path"
        raise InputError(msg)
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        msg = f"{what} folder {path} already holds results; choose a new folder or pass --overwrite"
        raise InputError(msg)
    return path


def output_dir(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    what: str = "output",
    inputs: Iterable[str | os.PathLike[str] | None] = (),
) -> contextlib.AbstractContextManager[Path]:
    """Assemble a folder atomically: :func:`omicsrun.commit.commit_dir` (lock, build aside,
    swap in when complete, input and writability checks, stale leftovers cleaned).

    Yields a temporary sibling folder to write into. When the block finishes, the folder
    replaces ``path`` (an earlier one only when ``overwrite``, and kept until that moment);
    when the block raises, the temporary folder is removed and ``path`` is left as it was.
    """
    from omicsrun.commit import commit_dir

    return commit_dir(path, overwrite=overwrite, what=what, inputs=inputs)
