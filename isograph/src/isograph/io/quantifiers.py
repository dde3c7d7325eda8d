"""Readers of transcript quantifier output: Salmon, kallisto and RSEM (tximport-style).

A quantification folder holds one subfolder per sample (the subfolder name is the sample
id) with one of

- Salmon ``quant.sf`` (or ``quant.sf.gz``): ``NumReads`` as counts, ``EffectiveLength``;
- kallisto ``abundance.tsv`` (or ``.gz``): ``est_counts``, ``eff_length``;
- RSEM ``<name>.isoforms.results`` (or ``.gz``): ``expected_count``, ``effective_length``
  (its ``gene_id`` column doubles as the transcript-to-gene map).

RSEM's flat layout (``<sample>.isoforms.results`` files directly in the folder) is accepted
too. As in tximport, counts are the estimated read counts and effective lengths are kept
(their mean over samples becomes ``mean_effective_length``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from isograph.io.tables import _read_delimited
from omicsrun import InputError

QuantTool = Literal["salmon", "kallisto", "rsem"]


@dataclass(frozen=True)
class _Spec:
    patterns: tuple[str, ...]
    id_key: str
    length_key: str
    effective_length_key: str
    count_key: str
    gene_key: str | None = None


_SPECS: dict[str, _Spec] = {
    "salmon": _Spec(("quant.sf", "quant.sf.gz"), "Name", "Length", "EffectiveLength", "NumReads"),
    "kallisto": _Spec(
        ("abundance.tsv", "abundance.tsv.gz"), "target_id", "length", "eff_length", "est_counts"
    ),
    "rsem": _Spec(
        ("*.isoforms.results", "*.isoforms.results.gz"),
        "transcript_id",
        "length",
        "effective_length",
        "expected_count",
        "gene_id",
    ),
}


@dataclass(frozen=True)
class QuantTables:
    """Counts and lengths gathered from one quantifier's per-sample outputs.

    Attributes
    ----------
    tool : {"salmon", "kallisto", "rsem"}
    transcript_ids : pd.Index, (n_transcripts,)
    sample_ids : pd.Index, (n_samples,)
    counts : np.ndarray, float32, (n_transcripts, n_samples)
    length : np.ndarray, float64, (n_transcripts,)
        Transcript length (first sample's; identical across samples for these tools).
    effective_length : np.ndarray, float32, (n_transcripts, n_samples)
    gene_ids : pd.Series or None
        Gene of each transcript when the tool reports one (RSEM), indexed by transcript id.
    files : list of Path
    """

    tool: QuantTool
    transcript_ids: pd.Index
    sample_ids: pd.Index
    counts: np.ndarray
    length: np.ndarray
    effective_length: np.ndarray
    gene_ids: pd.Series | None
    files: list[Path]


def _find_quant_file(folder: Path) -> tuple[str, Path] | None:
    hits = [
        (tool, p) for tool, spec in _SPECS.items() for pattern in spec.patterns for p in folder.glob(pattern)
    ]
    if len(hits) > 1:
        names = sorted(p.name for _, p in hits)
        msg = f"sample folder {folder} holds several quantification files {names}; expected exactly one"
        raise InputError(msg)
    return hits[0] if hits else None


def _locate(root: Path) -> list[tuple[str, str, Path]]:
    """(sample_id, tool, file) for every sample, sorted by sample id."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    found: list[tuple[str, str, Path]] = []
    missing: list[str] = []
    for sub in subdirs:
        hit = _find_quant_file(sub)
        if hit is None:
            missing.append(sub.name)
        else:
            found.append((sub.name, hit[0], hit[1]))
    if not subdirs:  # RSEM's flat layout: <sample>.isoforms.results in the folder itself
        for pattern in _SPECS["rsem"].patterns:
            for path in sorted(root.glob(pattern)):
                found.append((path.name.split(".isoforms.results")[0], "rsem", path))
    if missing:
        msg = (
            f"quantification folder {root}: sample folder(s) {missing[:5]} hold no quant.sf, abundance.tsv "
            f"or *.isoforms.results (optionally .gz)"
        )
        raise InputError(msg)
    if not found:
        msg = (
            f"quantification folder {root} holds no per-sample subfolders with quant.sf, abundance.tsv or "
            f"*.isoforms.results; found {sorted(p.name for p in root.iterdir())[:10]}"
        )
        raise InputError(msg)
    tools = sorted({tool for _, tool, _ in found})
    if len(tools) > 1:
        msg = f"quantification folder {root} mixes outputs of {tools}; expected one tool for all samples"
        raise InputError(msg)
    return sorted(found)


def _read_one(path: Path, spec: _Spec) -> pd.DataFrame:
    columns = [spec.id_key, spec.length_key, spec.effective_length_key, spec.count_key]
    if spec.gene_key:
        columns.append(spec.gene_key)
    header = _read_delimited(path, "quantification file", nrows=0)
    absent = [c for c in columns if c not in header.columns]
    if absent:
        msg = f"quantification file {path} has no column(s) {absent}; columns are {list(header.columns)}"
        raise InputError(msg)
    dtypes = {c: np.float64 for c in columns[1:4]} | {spec.id_key: str}
    if spec.gene_key:
        dtypes[spec.gene_key] = str
    table = _read_delimited(path, "quantification file", usecols=columns, dtype=dtypes)
    if table[spec.id_key].duplicated().any():
        dup = table.loc[table[spec.id_key].duplicated(), spec.id_key].iloc[0]
        msg = f"quantification file {path} repeats transcript id {dup!r}; ids must be unique"
        raise InputError(msg)
    return table


def read_quant_dir(path: str | os.PathLike[str]) -> QuantTables:
    """Read a folder of per-sample Salmon/kallisto/RSEM outputs.

    Parameters
    ----------
    path
        Folder with one subfolder per sample (subfolder name = sample id).

    Returns
    -------
    QuantTables
        Counts (n_transcripts, n_samples) in the first sample's transcript order, samples
        sorted by id.

    Raises
    ------
    InputError
        Missing folder, a sample folder without a recognised file, mixed tools, missing
        columns, or samples quantified against different transcript sets.
    """
    root = Path(path)
    if not root.is_dir():
        msg = f"quantification folder {root} does not exist or is not a folder"
        raise InputError(msg)
    located = _locate(root)
    tool = located[0][1]
    spec = _SPECS[tool]
    first = _read_one(located[0][2], spec)
    ids = pd.Index(first[spec.id_key].astype(str), name="transcript_id")
    n_tx, n_samples = len(ids), len(located)
    counts = np.empty((n_tx, n_samples), dtype=np.float32)
    eff = np.empty((n_tx, n_samples), dtype=np.float32)
    length = first[spec.length_key].to_numpy(np.float64)
    gene_ids = (
        pd.Series(first[spec.gene_key].to_numpy(), index=ids, name="gene_id") if spec.gene_key else None
    )
    for j, (sample, _, file) in enumerate(located):
        table = first if j == 0 else _read_one(file, spec)
        order = ids.get_indexer(pd.Index(table[spec.id_key].astype(str)))
        if len(table) != n_tx or (order < 0).any():
            msg = (
                f"sample {sample!r} ({file}) lists {len(table)} transcripts that differ from the "
                f"{n_tx} of sample {located[0][0]!r}; all samples must be quantified against one index"
            )
            raise InputError(msg)
        counts[order, j] = table[spec.count_key].to_numpy()
        eff[order, j] = table[spec.effective_length_key].to_numpy()
    sample_ids = pd.Index([s for s, _, _ in located], name="sample_id")
    return QuantTables(
        tool=tool,  # type: ignore[arg-type]
        transcript_ids=ids,
        sample_ids=sample_ids,
        counts=counts,
        length=length,
        effective_length=eff,
        gene_ids=gene_ids,
        files=[f for _, _, f in located],
    )
