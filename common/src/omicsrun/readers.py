"""Reading the small JSON files our formats keep beside their arrays."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from omicsrun.errors import InputError


def read_json_object(path: str | os.PathLike[str], *, what: str) -> dict[str, Any]:
    """Read a JSON file that must hold one object.

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for messages (``"manifest"``, ``"split file"``...).

    Raises
    ------
    InputError
        When the file is missing, is not valid UTF-8 JSON, or holds something other than an object.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{what} {path} does not exist"
        raise InputError(msg)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"{what} {path} is not valid JSON ({err})"
        raise InputError(msg) from None
    if not isinstance(data, dict):
        msg = f"{what} {path} holds a {type(data).__name__}; expected a JSON object"
        raise InputError(msg)
    return data


def _sniff(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array (saved with np.save, not np.savez)"
    if not head:
        return "an empty file"
    if head[:1] in (b"\x80",):
        return "a pickle"
    return f"unrecognised bytes {head[:4]!r}"


_ZIP_LOCAL_HEADER = 30  # fixed part of a zip local file header; name and extra lengths at 26..30


def _mapped_member(path: Path, archive: Any, name: str) -> np.ndarray | None:
    """Read-only memory map of an uncompressed ``.npy`` member of an open zip; None when compressed."""
    import zipfile

    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with path.open("rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(_ZIP_LOCAL_HEADER)
        if len(local) != _ZIP_LOCAL_HEADER or local[:4] != b"PK\x03\x04":
            msg = f"bad zip local header for member {name}"
            raise zipfile.BadZipFile(msg)
        start = info.header_offset + _ZIP_LOCAL_HEADER + int.from_bytes(local[26:28], "little")
        start += int.from_bytes(local[28:30], "little")
        handle.seek(start)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None  # other header versions: numpy's own reader
        offset = handle.tell()
    if dtype.hasobject:
        msg = "Object arrays cannot be loaded when allow_pickle=False"
        raise ValueError(msg)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset - start + nbytes > info.file_size:
        msg = (
            f"member {name} is truncated ({info.file_size} bytes stored, {offset - start + nbytes} expected)"
        )
        raise EOFError(msg)
    if nbytes == 0:
        return np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    # Mapped with MAP_POPULATE where the system has it: the page tables are filled in one
    # call instead of one page fault per 4 KiB page touched later (0.7 s of system time for
    # a 450 MB prediction matrix); the pages come from the page cache either way.
    import mmap

    start_page = offset - offset % mmap.ALLOCATIONGRANULARITY
    with path.open("rb") as handle:
        mapped = mmap.mmap(
            handle.fileno(),
            offset - start_page + nbytes,
            flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
            prot=mmap.PROT_READ,
            offset=start_page,
        )
    flat = np.frombuffer(mapped, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset - start_page)
    return flat.reshape(shape, order="F" if fortran else "C")


def load_npz(
    path: str | os.PathLike[str],
    *,
    what: str,
    required: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
    mmap: bool = False,
) -> dict[str, np.ndarray]:
    """Read the arrays of a ``.npz`` archive (every one, or ``only`` these); nothing is unpickled.

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for messages.
    required
        Keys that must be present.
    only
        Read just these keys (those present), leaving the other arrays on disk.
    mmap
        Map the arrays stored uncompressed (``np.savez``) read-only from the file instead of
        copying them into memory (read-only views of the mapping; the pages come from the
        page cache). Their zip CRC-32 is then not checked (it would read every byte); the header,
        dtype and size are. Compressed members are read as usual.

    Raises
    ------
    InputError
        When the file is missing, is not a zip of ``.npy`` arrays (a bare ``.npy`` under an
        ``.npz`` name, garbage bytes), holds object (pickled) arrays, is truncated, or lacks a
        required key.
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        msg = f"{what} {path} does not exist"
        raise InputError(msg)
    if not zipfile.is_zipfile(path):
        msg = f"{what} {path} is not a readable .npz archive (a zip of .npy arrays); found {_sniff(path)}"
        raise InputError(msg)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in required if k not in npz.files]
            if missing:
                msg = (
                    f"{what} {path} has no array under key {missing[0]!r} "
                    f"(no array {missing[0]!r} among {sorted(npz.files)}; expected {list(required)})"
                )
                raise InputError(msg)
            keys = [k for k in npz.files if only is None or k in only]
            if not mmap:
                return {k: npz[k] for k in keys}
            mapped = {k: _mapped_member(path, npz.zip, f"{k}.npy") for k in keys}
            return {k: npz[k] if m is None else m for k, m in mapped.items()}
    except InputError:
        raise
    except ValueError as err:
        if "pickle" in str(err).lower():
            msg = f"{what} {path} holds object arrays, which are never unpickled; expected numeric arrays"
        else:
            msg = f"{what} {path} is not a readable .npz archive ({' '.join(str(err).split())})"
        raise InputError(msg) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        msg = f"{what} {path} is not a readable .npz archive ({type(err).__name__}: {err})"
        raise InputError(msg) from None
