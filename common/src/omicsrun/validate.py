"""Checks at the public edge: numbers (type, finiteness, range) and paths inside a folder.

Every message names the option or field, the valid range and what was found, e.g.
``--noise must be a finite number >= 0; found -1.0``.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

from omicsrun.errors import InputError


def _describe(
    *, integer: bool, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> str:
    kind = "an integer" if integer else "a finite number"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return kind + (" " + " and ".join(parts) if parts else "")


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> Any:
    """Return ``value`` (as ``int`` when ``integer``) when it is a real, finite number in range.

    Booleans, strings, NaN and infinities are refused; ``integer`` also refuses ``2.5`` (but
    accepts ``2.0``, returned as ``2``).

    Raises
    ------
    InputError
        ``"<name> must be <kind and range>; found <value>"``.
    """
    expected = _describe(integer=integer, low=low, high=high, low_open=low_open, high_open=high_open)
    msg = f"{name} must be {expected}; found {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(msg)
    number = float(value)
    if not math.isfinite(number):
        raise InputError(msg)
    if integer:
        if not number.is_integer():
            raise InputError(msg)
        value = int(number)
    if low is not None and (number <= low if low_open else number < low):
        raise InputError(msg)
    if high is not None and (number >= high if high_open else number > high):
        raise InputError(msg)
    return value


def parse_number(text: str, name: str, **bounds: Any) -> Any:
    """:func:`check_number` on the text of an option (``"3"`` -> 3, ``"0.5"`` -> 0.5)."""
    integer = bool(bounds.get("integer"))
    try:
        value: Any = int(text) if integer else float(text)
    except (TypeError, ValueError):
        expected = _describe(
            integer=integer,
            low=bounds.get("low"),
            high=bounds.get("high"),
            low_open=bool(bounds.get("low_open")),
            high_open=bool(bounds.get("high_open")),
        )
        msg = f"{name} must be {expected}; found {text!r}"
        raise InputError(msg) from None
    return check_number(value, name, **bounds)


def check_type(value: Any, name: str, kinds: type | tuple[type, ...], expected: str) -> Any:
    """Refuse a JSON value of the wrong type: ``"<name> must be <expected>; found <type> <value>"``."""
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        msg = f"{name} must be {expected}; found {type(value).__name__} {value!r:.80}"
        raise InputError(msg)
    return value


def inside(root: str | os.PathLike[str], name: Any, *, what: str = "file") -> Path:
    """``root / name`` when ``name`` is a relative path that stays inside ``root``.

    Absolute paths, ``..`` escapes and symbolic links leading out of ``root`` are refused:
    a manifest may only name files of its own folder.

    Raises
    ------
    InputError
        Naming the entry and the folder it must stay in.
    """
    if not isinstance(name, str) or not name or "\0" in name:
        msg = f"{what} name must be a non-empty relative path string; found {name!r:.80}"
        raise InputError(msg)
    base = Path(root)
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts:
        msg = f"{what} {name!r} lies outside the folder {base}; only files inside it may be named"
        raise InputError(msg)
    path = base / candidate
    real_base = base.resolve()
    real = path.resolve()
    if real != real_base and real_base not in real.parents:
        msg = (
            f"{what} {name!r} leads outside the folder {base} (to {real}); only files inside it may be named"
        )
        raise InputError(msg)
    return path


def guard_cli_numbers(command: Any) -> Any:
    """Make every float option of a Click/Typer command tree refuse NaN and infinities, and
    every option named ``seed`` refuse negative values, as one-line usage errors.

    Called once by :func:`omicsrun.cli.run_app`; per-option ranges stay on the options
    (``typer.Option(..., min=0)``).
    """
    seen: set[int] = set()

    def visit(cmd: Any) -> None:
        if id(cmd) in seen:
            return
        seen.add(id(cmd))
        for param in getattr(cmd, "params", []):
            _guard_param(param)
        for sub in getattr(cmd, "commands", {}).values():
            visit(sub)

    visit(command)
    return command


def _guard_param(param: Any) -> None:
    # Checked on the parsed value, so it holds whatever Click/Typer version declared the type.
    is_seed = param.name == "seed"
    if getattr(param, "_omicsrun_guarded", False):
        return
    original = param.callback
    label = (param.opts or [param.name])[0]

    def callback(ctx: Any, prm: Any, value: Any) -> Any:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None:
                continue
            if isinstance(v, float) and not math.isfinite(v):
                _bad(param, ctx, f"{label} must be a finite number; found {v}")
            if is_seed and isinstance(v, int) and v < 0:
                _bad(param, ctx, f"{label} must be a non-negative integer; found {v}")
        return original(ctx, prm, value) if original is not None else value

    param.callback = callback
    param._omicsrun_guarded = True


def _bad(param: Any, ctx: Any, message: str) -> None:
    from omicsrun.cli import _click_exceptions

    raise _click_exceptions().UsageError(message, ctx)


def check_like_default(value: Any, default: Any, name: str) -> Any:
    """Check a hyperparameter against the type of its default: a number default takes only a
    finite number (an integer default only an integer), a bool default only a bool, a string
    default only a string. Other defaults (``None``, lists) are not checked here.

    Raises
    ------
    InputError
        ``"<name> must be <kind>; found <value>"``.
    """
    if isinstance(default, bool):
        return check_type(value, name, bool, "true or false")
    if isinstance(default, numbers.Integral):
        return check_number(value, name, integer=True)
    if isinstance(default, numbers.Real):
        return check_number(value, name)
    if isinstance(default, str):
        return check_type(value, name, str, "a string")
    return value


def all_finite(values: Any) -> bool:
    """Whether a numeric array holds no NaN or infinity, without a boolean copy of it.

    One float64 sum answers for almost every array (NaN and infinity propagate into it); only
    when the sum is not finite (a bad entry, or finite values so large that their sum
    overflows) is every entry checked.
    """
    import numpy as np

    arr = np.asarray(values)
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.inexact):
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum(dtype=np.complex128 if np.iscomplexobj(arr) else np.float64)):
            return True
    return bool(np.isfinite(arr).all())
