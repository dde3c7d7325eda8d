"""The one bridge from IsoGraph to R: ``Rscript`` in a subprocess, data through files.

Every R call of the project goes through :func:`run_r`: the script text and its inputs are
written into a temporary folder, ``Rscript --vanilla`` runs there under a timeout with its
output captured, and the caller reads R's result files back. R's own messages (stdout and
stderr) come back as lines for the caller's ``run.log``; a failure raises :class:`RError`
with the tail of R's stderr. A missing ``Rscript`` or R package is one line saying what to
install (:class:`omicsrun.InputError`, exit status 2 on the command line).

Matrices cross as little-endian float32 in R's column-major order
(:func:`write_matrix` / R's ``readBin``), so no CSV parsing sits on the hot path.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omicsrun import InputError

R_INSTALL_HINT = "install R and WGCNA: apt-get install r-base-core r-cran-wgcna (Debian/Ubuntu)"


class RError(RuntimeError):
    """R ran but failed or ran past its timeout; the message carries R's stderr tail."""


@dataclass(frozen=True)
class RResult:
    """What one R run left behind.

    Attributes
    ----------
    messages
        R's stdout then stderr, one entry per line (for ``run.log``).
    seconds
        Wall seconds of the ``Rscript`` process (start-up and library loading included).
    """

    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def rscript_path() -> str:
    """Path of ``Rscript`` (``$ISOGRAPH_RSCRIPT`` first, then ``PATH``).

    Raises
    ------
    InputError
        When no ``Rscript`` is found.
    """
    explicit = os.environ.get("ISOGRAPH_RSCRIPT")
    found = explicit if explicit and Path(explicit).is_file() else shutil.which("Rscript")
    if found is None:
        msg = f"Rscript not found on PATH (R is not installed); {R_INSTALL_HINT}"
        raise InputError(msg)
    return found


@functools.cache
def _has_package(rscript: str, package: str) -> bool:
    probe = f'quit(status = if (nzchar(system.file(package = "{package}"))) 0L else 3L)'
    done = subprocess.run([rscript, "--vanilla", "-e", probe], capture_output=True, timeout=120, check=False)
    return done.returncode == 0


def check_r_packages(packages: Sequence[str]) -> None:
    """Raise one line when R or one of ``packages`` is missing.

    Raises
    ------
    InputError
        Naming the missing piece and how to install it.
    """
    rscript = rscript_path()
    for package in packages:
        if not _has_package(rscript, package):
            msg = f"R package {package} is not installed for {rscript}; {R_INSTALL_HINT}"
            raise InputError(msg)


def write_matrix(path: Path, matrix: np.ndarray) -> None:
    """Write ``matrix`` (rows x columns) as little-endian float32, column-major (R's order)."""
    np.asarray(matrix, dtype="<f4").T.tofile(path)


def write_params(path: Path, params: dict[str, object]) -> None:
    """``key<TAB>value`` lines (read in R with ``read.delim``); ``None`` becomes ``NA``."""
    lines = ["key\tvalue"]
    for key, value in params.items():
        text = "NA" if value is None else str(value).upper() if isinstance(value, bool) else str(value)
        lines.append(f"{key}\t{text}")
    path.write_text("\n".join(lines) + "\n")


def run_r(
    script: str, workdir: Path, *, args: Sequence[str] = (), timeout: float, what: str = "R"
) -> RResult:
    """Run R code in ``workdir`` (which holds its input files) and wait for it.

    Parameters
    ----------
    script
        R source; it finds its inputs with ``commandArgs(trailingOnly = TRUE)`` and relative
        paths (the working directory is ``workdir``).
    workdir
        Existing folder for inputs, outputs and the script itself.
    args
        Extra command-line arguments for the script.
    timeout
        Seconds before the process is killed.
    what
        Name of the step, for messages.

    Raises
    ------
    InputError
        When Rscript is missing.
    RError
        When R exits non-zero or runs past ``timeout``.
    """
    rscript = rscript_path()
    script_path = workdir / "script.R"
    script_path.write_text(script)
    command = [rscript, "--vanilla", str(script_path), *map(str, args)]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, check=True, capture_output=True, text=True, timeout=timeout, cwd=workdir
        )
    except subprocess.CalledProcessError as err:
        tail = " | ".join((err.stderr or "").strip().splitlines()[-5:])
        msg = f"{what} failed (Rscript exit code {err.returncode}): {tail}"
        raise RError(msg) from err
    except subprocess.TimeoutExpired as err:
        msg = f"{what} ran past its timeout of {timeout:g} s; raise the timeout or use fewer features"
        raise RError(msg) from err
    seconds = time.perf_counter() - start
    messages = [f"[R] {line}" for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return RResult(messages=messages, seconds=seconds)
