"""Reading the small JSON files our formats keep beside their arrays."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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
