"""The user-facing error type.

Anything a user can fix (a malformed file, an unknown option, a folder that already holds
results) raises :class:`InputError` with a message that says what was expected and what was
found. Command lines print that message on one line and exit with status 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: the message names what was expected and what was found."""


def check_seed(seed: object) -> int:
    """Return ``seed`` as an ``int`` when it is a non-negative integer (not a bool).

    Raises
    ------
    InputError
        For anything else, naming what was found.
    """
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        msg = f"seed must be a non-negative integer; found {seed!r}"
        raise InputError(msg)
    return int(seed)
