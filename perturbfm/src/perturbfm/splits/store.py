"""The split store: one JSON file per split, named by the split's content hash.

``<root>/<hash>.json`` holds :meth:`Split.to_dict`. Every load re-hashes the content and
refuses a file whose hash differs from its name (edited by hand, truncated, corrupted) or
whose ``data_hash`` differs from the dataset it is used with. A split is never regenerated
or overwritten: saving the same content again is a no-op, and a different file already
under the name is refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from omicsrun import InputError
from omicsrun.atomic import dumps_json, write_text
from omicsrun.hashing import sha256_json
from omicsrun.readers import read_json_object
from perturbfm.splits.split import Split

SPLIT_DIR_ENV = "PERTURBFM_SPLIT_DIR"
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_MIN_PREFIX = 4


def default_split_dir() -> Path:
    """``$PERTURBFM_SPLIT_DIR`` when set, else ``./splits``."""
    return Path(os.environ.get(SPLIT_DIR_ENV) or "splits")


class SplitStore:
    """Hash-named split files under ``root`` (default :func:`default_split_dir`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_split_dir()

    def path_of(self, split_hash: str) -> Path:
        return self.root / f"{split_hash}.json"

    def save(self, split: Split) -> Path:
        """Write ``split`` as ``<root>/<frozen_hash>.json``; identical content already there is kept.

        Raises
        ------
        InputError
            When a file with different content already sits under that name.
        """
        path = self.path_of(split.frozen_hash)
        text = dumps_json(split.to_dict())
        if path.exists():
            try:
                existing: Any = self._read(path)
            except InputError:
                existing = None
            if existing is None or sha256_json(existing) != sha256_json(split.to_dict()):
                msg = f"{path} already exists with different content; refusing to overwrite a split"
                raise InputError(msg)
            return path
        write_text(path, text)
        return path

    def hashes(self) -> list[str]:
        """Hashes of the files in the store (not verified; see :meth:`load`)."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if _HASH_RE.match(p.stem))

    def resolve(self, hash_or_prefix: str) -> str:
        """Full hash for a unique prefix (at least 4 hex characters)."""
        key = str(hash_or_prefix).strip().lower()
        if len(key) < _MIN_PREFIX or not re.fullmatch(r"[0-9a-f]+", key):
            msg = f"split hash must be at least {_MIN_PREFIX} hex characters; found {hash_or_prefix!r}"
            raise InputError(msg)
        matches = [h for h in self.hashes() if h.startswith(key)]
        if not matches:
            msg = f"no split {key!r} in {self.root} (set {SPLIT_DIR_ENV} or --split-dir to another store)"
            raise InputError(msg)
        if len(matches) > 1:
            msg = f"split prefix {key!r} is ambiguous in {self.root}: {[m[:12] for m in matches[:5]]}"
            raise InputError(msg)
        return matches[0]

    def _read(self, path: Path) -> dict[str, Any]:
        return read_json_object(path, what="split file (edited or corrupted?)")

    def load(self, hash_or_prefix: str, *, data_hash: str | None = None) -> Split:
        """Read and verify a split.

        Parameters
        ----------
        hash_or_prefix
            Full split hash or a unique prefix.
        data_hash
            When given, the split's ``data_hash`` must equal it.

        Raises
        ------
        InputError
            Unknown or ambiguous hash; a file whose content no longer hashes to its name;
            a split made for other data.
        """
        split_hash = self.resolve(hash_or_prefix)
        path = self.path_of(split_hash)
        data = self._read(path)
        content = {k: v for k, v in data.items() if k != "frozen_hash"}
        digest = sha256_json(content)
        if digest != split_hash or data.get("frozen_hash") != split_hash:
            msg = (
                f"split file {path.name} fails verification: its content hashes to {digest[:12]}..., "
                f"not {split_hash[:12]}...; it was modified after it was saved - recreate it with "
                "'perturbfm splits create'"
            )
            raise InputError(msg)
        split = Split.from_dict(data)
        if data_hash is not None and split.data_hash != data_hash:
            msg = (
                f"split {split_hash[:12]} was made for dataset {split.data_hash[:12]}..., "
                f"but the data given hash to {data_hash[:12]}...; use a split created from this dataset"
            )
            raise InputError(msg)
        return split

    def list(self) -> list[dict[str, Any]]:
        """Summary of every split in the store; files that fail verification are marked."""
        out = []
        for split_hash in self.hashes():
            try:
                out.append({**self.load(split_hash).summary(), "verified": True})
            except InputError as err:
                out.append({"split_hash": split_hash, "verified": False, "error": str(err)})
        return out
