"""The user-facing error type.

Anything a user can fix (a malformed file, an unknown option, a folder that already holds
results) raises :class:`InputError` with a message that says what was expected and what was
found. Command lines print that message on one line and exit with status 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: the message names what was expected and what was found."""
