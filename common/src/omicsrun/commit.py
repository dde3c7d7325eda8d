"""The one way an output is committed: build aside, lock the target, swap in when complete.

:func:`commit_dir` (re-exported as :func:`omicsrun.atomic.output_dir`) and
:func:`commit_file` give every command of both tools the same guarantees:

1. **Checked before any work.** The target may not be the input, hold the input, or lie
   inside it; a path under a file, a read-only or full file system, or an existing result
   without ``overwrite`` is refused with one :class:`~omicsrun.errors.InputError` line.
2. **One writer.** An exclusive ``flock`` on ``.<name>.lock`` beside the target is held from
   the start of the build to the commit; a second writer is refused at once (before it
   computes anything), naming the process that holds the target.
3. **Built aside.** Everything is written into ``.<name>.<pid>-<token>.tmp`` in the target's
   own folder (same file system, so the final step is a rename).
4. **Replaced only when complete.** On success the build is swapped with the old result in
   one ``renameat2(RENAME_EXCHANGE)`` call where the kernel has it (Linux), else by two
   renames whose middle state is recovered by the next run. On failure (an exception, a full
   disk, Ctrl-C) the build is removed and the old result is untouched. A ``kill -9`` leaves
   the old result in place and a ``.tmp`` folder beside it.
5. **Leftovers cleaned.** Whoever next takes the lock on a target knows that no live process
   is building it: stale ``.tmp`` folders are removed and a ``.old`` folder orphaned between
   the two renames is put back (or removed when the new result is in place), each reported
   on the ``omicsrun`` logger.

Commands adopt it by opening the context at the *start* of the work and writing into the
folder it yields::

    with output_dir(out, overwrite=overwrite, what="fit output", inputs=[bundle]) as build:
        result = compute(...)          # may raise: nothing is written, the lock is released
        write_fit(result, build)       # library writers may call output_dir(build) again:
                                       # a folder being built is yielded as it is
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from omicsrun.errors import InputError

log = logging.getLogger("omicsrun")

PathLike = str | os.PathLike[str]

#: Free bytes a target's file system must have before work starts.
MIN_FREE_BYTES = 1 << 20

# Build folders of this process that are open right now: a nested output_dir() on one of
# them writes straight into it (the outer context commits).
_ACTIVE: set[Path] = set()
# The same, resolved, mapped to the final path each will be committed to.
_FINAL_OF: dict[Path, Path] = {}

# errno values that mean "the place cannot be written", not "the program is wrong".
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR})


class TargetBusyError(InputError):
    """Another live process holds the lock on the target."""


class TargetExistsError(InputError):
    """The target already holds results and ``overwrite`` was not given."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _abs(path: PathLike) -> Path:
    return Path(os.path.abspath(os.fspath(path)))  # noqa: PTH100 - no symlink resolution wanted here


def _resolved(path: PathLike) -> Path:
    return Path(path).resolve(strict=False)


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_not_input(target: PathLike, inputs: Iterable[PathLike | None], *, what: str = "output") -> None:
    """Refuse a target that is an input, holds an input, or lies inside an input folder.

    Raises
    ------
    InputError
        Naming the input the target would destroy or change.
    """
    out = _resolved(target)
    for item in inputs:
        if item is None:
            continue
        src = _resolved(item)
        if _is_within(src, out) or _is_within(out, src):
            relation = "is" if src == out else ("holds" if _is_within(src, out) else "lies inside")
            msg = (
                f"{what} {target} {relation} the input {item}; "
                "writing there would destroy the input, choose another output path"
            )
            raise InputError(msg)


def check_writable(path: PathLike, *, what: str = "output", min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Check that ``path`` could be created: its nearest existing ancestor is a writable folder
    on a file system that is not read-only and has at least ``min_free_bytes`` free.

    Raises
    ------
    InputError
        For a path under a file, a read-only or full file system, or a folder without write
        permission, with one line naming the place.
    """
    target = _abs(path)
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        msg = f"cannot create {what} {path}: {ancestor} is a file, not a folder"
        raise InputError(msg)
    try:
        stats = os.statvfs(ancestor)
    except OSError as err:
        msg = f"cannot create {what} {path}: {ancestor} cannot be inspected ({err.strerror})"
        raise InputError(msg) from None
    if stats.f_flag & os.ST_RDONLY:
        msg = f"cannot create {what} {path}: {ancestor} is on a read-only file system"
        raise InputError(msg)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        msg = f"cannot create {what} {path}: no permission to write in {ancestor}"
        raise InputError(msg)
    free = stats.f_bavail * stats.f_frsize
    if free < min_free_bytes:
        msg = (
            f"cannot create {what} {path}: the file system of {ancestor} has {free} bytes free; "
            f"at least {min_free_bytes} needed"
        )
        raise InputError(msg)


def _check_target(final: Path, *, overwrite: bool, what: str) -> None:
    if final.exists() and not final.is_dir():
        msg = f"{what} folder {final} is a file; expected a folder path"
        raise InputError(msg)
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        msg = f"{what} folder {final} already holds results; choose a new folder or pass --overwrite"
        raise TargetExistsError(msg)


def _mkdirs(path: Path, *, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"cannot create {what} folder {path}: {err.strerror}"
        raise InputError(msg) from None


# -- the lock -----------------------------------------------------------------------------


def _lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


def _acquire(final: Path, *, what: str) -> tuple[int, Path]:
    """Exclusive, non-blocking flock on ``.<name>.lock``; returns (fd, lock path)."""
    lock = _lock_path(final)
    for _ in range(100):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        except OSError as err:
            msg = f"cannot lock {what} {final}: {err.strerror} ({lock})"
            raise InputError(msg) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = os.pread(fd, 64, 0).decode().strip()
            os.close(fd)
            by = f" (pid {holder})" if holder else ""
            msg = (
                f"another process{by} is writing {what} {final} right now; "
                "wait for it to finish or choose another output"
            )
            raise TargetBusyError(msg) from None
        # The previous holder unlinks the lock file before releasing it: make sure ours is
        # still the file at that path, else try again on the new one.
        try:
            same = os.fstat(fd).st_ino == lock.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd, lock
        os.close(fd)
    msg = f"could not take the lock {lock} on {what} {final}"
    raise TargetBusyError(msg)


def _release(fd: int, lock: Path) -> None:
    with contextlib.suppress(OSError):
        lock.unlink()
    os.close(fd)


@contextlib.contextmanager
def hold(path: PathLike, *, what: str = "output") -> Iterator[Path]:
    """Hold the output lock on ``path`` for the block, without committing anything.

    For work that lives in place for a while (a training folder with checkpoints): a second
    process asking for the same lock is refused at once with :class:`TargetBusyError`
    (one line naming the holder's pid), as a second writer of an output is.
    """
    final = _abs(path)
    _mkdirs(final.parent, what=what)
    fd, lock = _acquire(final, what=what)
    try:
        yield final
    finally:
        _release(fd, lock)


def is_locked(path: PathLike) -> bool:
    """Whether some live process holds the output lock on ``path``."""
    lock = _lock_path(_abs(path))
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# -- leftovers ----------------------------------------------------------------------------


def _leftover_re(name: str) -> re.Pattern[str]:
    # ours: .<name>.<pid>-<token>.tmp|.old; older mkdtemp/mkstemp ones: .<name>.<8 chars>.tmp
    return re.compile(rf"^\.{re.escape(name)}\.(?:\d+-[0-9a-f]{{8}}|[A-Za-z0-9_]{{8}})\.(tmp|old)$")


def leftovers(path: PathLike) -> list[Path]:
    """Temporary build (``.tmp``) and displaced (``.old``) entries of ``path`` in its folder."""
    final = _abs(path)
    if not final.parent.is_dir():
        return []
    pattern = _leftover_re(final.name)
    return sorted(p for p in final.parent.iterdir() if pattern.match(p.name))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _clean_leftovers(final: Path) -> None:
    """Under the lock: every leftover belongs to a process that died while building."""
    for item in leftovers(final):
        if item.name.endswith(".old") and not final.exists():
            # Killed between moving the old result aside and moving the new one in.
            item.rename(final)
            log.warning("restored %s from %s (left by an interrupted run)", final, item.name)
            continue
        _remove(item)
        log.warning("removed stale temporary %s (left by an interrupted run)", item)


# -- the swap -----------------------------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_EXCHANGE = _renameat2()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one system call; False when the kernel or file system cannot."""
    if _EXCHANGE is None:
        return False
    result = _EXCHANGE(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)  # type: ignore[operator]
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(a))


def _swap_in(build: Path, final: Path, token: str) -> None:
    """Put ``build`` at ``final``; an existing ``final`` survives until that moment."""
    if not final.exists() and not final.is_symlink():
        build.rename(final)
        return
    if _exchange(build, final):
        _remove(build)  # now holds the old result
        return
    old = final.parent / f".{final.name}.{os.getpid()}-{token}.old"
    final.rename(old)
    build.rename(final)
    _remove(old)


def _new_token() -> str:
    return secrets.token_hex(4)


def _as_input_error(err: OSError, final: Path, what: str) -> InputError:
    msg = f"could not write {what} {final}: {err.strerror}; any earlier result there is untouched"
    return InputError(msg)


def final_path(path: PathLike) -> Path:
    """Where ``path`` will be once the build folder holding it is committed (for provenance
    records written during the build); ``path`` itself when it is in no open build."""
    real = _resolved(path)
    for build, final in _FINAL_OF.items():
        if _is_within(real, build):
            return final / real.relative_to(build)
    return Path(path)


# -- the public contexts ------------------------------------------------------------------


@contextlib.contextmanager
def commit_dir(
    path: PathLike,
    *,
    overwrite: bool = False,
    what: str = "output",
    inputs: Iterable[PathLike | None] = (),
    min_free_bytes: int = MIN_FREE_BYTES,
) -> Iterator[Path]:
    """Build a result folder aside and commit it to ``path`` only when the block succeeds.

    Parameters
    ----------
    path
        The result folder.
    overwrite
        Replace an existing non-empty folder (it is kept until the new one is complete).
    what
        What the folder is, for messages (``"fit output"``, ``"run"``...).
    inputs
        Files or folders the command reads: the target may not be, hold or lie inside one.
    min_free_bytes
        Free space the file system must have before work starts.

    Yields
    ------
    pathlib.Path
        The build folder to write into. When ``path`` is itself a folder being built by an
        enclosing ``commit_dir`` of this process, it is yielded as it is.

    Raises
    ------
    InputError
        Before the block runs: the target is a file, holds results (without ``overwrite``),
        is an input, cannot be written, or is being written by another process
        (:class:`TargetBusyError`). After: the build ran out of space or permission.
    """
    final = _abs(path)
    if final in _ACTIVE or _resolved(final) in _FINAL_OF:
        yield final
        return
    check_not_input(final, inputs, what=what)
    _check_target(final, overwrite=overwrite, what=what)
    check_writable(final, what=what, min_free_bytes=min_free_bytes)
    _mkdirs(final.parent, what=what)
    fd, lock = _acquire(final, what=what)
    try:
        _clean_leftovers(final)
        _check_target(final, overwrite=overwrite, what=what)  # it may have appeared meanwhile
        token = _new_token()
        build = final.parent / f".{final.name}.{os.getpid()}-{token}.tmp"
        try:
            build.mkdir(mode=0o777 & ~_umask())
        except OSError as err:
            raise _as_input_error(err, final, what) from None
        _ACTIVE.add(build)
        _FINAL_OF[build.resolve()] = final
        try:
            yield build
            _swap_in(build, final, token)
        except OSError as err:
            _remove(build)
            if err.errno in WRITE_ERRNOS:
                raise _as_input_error(err, final, what) from None
            raise
        except BaseException:
            _remove(build)
            raise
        finally:
            _ACTIVE.discard(build)
            _FINAL_OF.pop(build.resolve(), None)
    finally:
        _release(fd, lock)


@contextlib.contextmanager
def commit_file(
    path: PathLike,
    *,
    overwrite: bool = False,
    what: str = "output",
    inputs: Iterable[PathLike | None] = (),
    min_free_bytes: int = MIN_FREE_BYTES,
) -> Iterator[Path]:
    """Like :func:`commit_dir` for one file: yields a temporary file path to write to.

    The file is renamed over ``path`` when the block succeeds; an existing file is refused
    unless ``overwrite`` and survives any failure.
    """
    final = _abs(path)
    check_not_input(final, inputs, what=what)
    if final.is_dir():
        msg = f"{what} {path} is a folder; expected a file path"
        raise InputError(msg)
    if final.exists() and not overwrite:
        msg = f"{what} {path} already exists; choose a new file or pass --overwrite"
        raise TargetExistsError(msg)
    check_writable(final, what=what, min_free_bytes=min_free_bytes)
    _mkdirs(final.parent, what=what)
    fd, lock = _acquire(final, what=what)
    try:
        _clean_leftovers(final)
        if final.exists() and not overwrite:
            msg = f"{what} {path} already exists; choose a new file or pass --overwrite"
            raise TargetExistsError(msg)
        tmp = final.parent / f".{final.name}.{os.getpid()}-{_new_token()}.tmp"
        try:
            yield tmp
            if not tmp.exists():
                msg = f"nothing was written to {what} {path}"
                raise RuntimeError(msg)
            tmp.chmod(0o666 & ~_umask())
            tmp.replace(final)
        except OSError as err:
            _remove(tmp)
            if err.errno in WRITE_ERRNOS:
                raise _as_input_error(err, final, what) from None
            raise
        except BaseException:
            _remove(tmp)
            raise
    finally:
        _release(fd, lock)


def claim_unique_dir(
    root: PathLike,
    name: str,
    *,
    what: str = "run",
    inputs: Iterable[PathLike | None] = (),
    max_tries: int = 1000,
) -> UniqueDirClaim:
    """:func:`commit_dir` on ``root/name``, or ``name-2``, ``name-3``... when that one is
    taken or being written: two runs started at the same instant never share a folder.

    Returns the entered-on-demand context manager of the first free candidate; its
    ``final`` path is ``claim.final`` after entering (see :class:`UniqueDirClaim`).
    """
    return UniqueDirClaim(Path(root), name, what=what, inputs=tuple(inputs), max_tries=max_tries)


class UniqueDirClaim(contextlib.AbstractContextManager):
    """The context :func:`claim_unique_dir` returns; ``final`` is the claimed folder."""

    def __init__(
        self, root: Path, name: str, *, what: str, inputs: tuple[PathLike | None, ...], max_tries: int
    ) -> None:
        self.root, self.name, self.what, self.inputs, self.max_tries = root, name, what, inputs, max_tries
        self.final: Path | None = None
        self._cm: contextlib.AbstractContextManager[Path] | None = None

    def __enter__(self) -> Path:
        for k in range(1, self.max_tries + 1):
            candidate = self.root / (self.name if k == 1 else f"{self.name}-{k}")
            if candidate.exists():
                continue
            cm = commit_dir(candidate, overwrite=False, what=self.what, inputs=self.inputs)
            try:
                build = cm.__enter__()
            except (TargetBusyError, TargetExistsError):
                continue
            self.final, self._cm = candidate, cm
            return build
        msg = f"no free {self.what} folder name under {self.root} for {self.name!r}"
        raise InputError(msg)

    def __exit__(self, *exc: object) -> bool | None:
        if self._cm is None:
            return None
        return self._cm.__exit__(*exc)  # type: ignore[arg-type]
