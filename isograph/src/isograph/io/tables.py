"""Readers for delimited tables: count tables, transcript-to-gene maps, sample tables, lengths.

Every reader takes a path, checks it once and returns plain pandas/numpy objects; nothing
here knows about bundles. Separators follow the file name (``.csv`` -> comma, ``.tsv``,
``.tab``, ``.txt`` -> tab, each optionally ``.gz``/``.bz2``/``.xz``/``.zst``); any other name
is sniffed from its first line.
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from omicsrun import InputError

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


def _require_file(path: str | os.PathLike[str], what: str) -> Path:
    path = Path(path)
    if not path.exists():
        msg = f"{what} {path} does not exist"
        raise InputError(msg)
    if not path.is_file():
        msg = f"{what} {path} is not a file"
        raise InputError(msg)
    return path


def _first_line(path: Path) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", errors="replace") as handle:  # type: ignore[operator]
            return handle.readline()
    except (OSError, EOFError) as err:
        msg = f"cannot read {path}: {err}"
        raise InputError(msg) from err


def delimiter_of(path: str | os.PathLike[str]) -> str:
    """The field separator of a delimited text file, from its name or else its first line."""
    path = Path(path)
    name = path.name.lower()
    for ext in _COMPRESSED:
        name = name.removesuffix(ext)
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".tab", ".txt", ".sf", ".results")):
        return "\t"
    line = _first_line(path)
    try:
        return csv.Sniffer().sniff(line, delimiters="\t,;").delimiter
    except csv.Error:
        return "\t"


def _read_delimited(path: Path, what: str, **kwargs: object) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=delimiter_of(path), engine="c", **kwargs)  # type: ignore[call-overload]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as err:
        msg = f"{what} {path} is not a readable delimited table: {' '.join(str(err).split())}"
        raise InputError(msg) from err
    except ValueError as err:  # a non-numeric cell under a float dtype
        msg = f"{what} {path} must hold numbers after its id column: {' '.join(str(err).split())}"
        raise InputError(msg) from err


def strip_version(ids: pd.Index | pd.Series) -> pd.Index:
    """Drop an Ensembl-style version suffix: ``ENST00000456328.2`` -> ``ENST00000456328``.

    A ``_PAR_Y`` tag after the version is kept (``ENST...1_PAR_Y`` -> ``ENST..._PAR_Y``).
    """
    # pyarrow's RE2 runs in C++ over the whole column: ~0.1 s for 200k ids instead of ~1 s in Python.
    values = pa.array(np.asarray(ids, dtype=object), type=pa.string())
    stripped = pc.replace_substring_regex(values, r"\.[0-9]+(_PAR_Y)?$", r"\1")
    return pd.Index(stripped.to_numpy(zero_copy_only=False), dtype=object)


def _is_known_id(value: str, known_ids: pd.Index) -> bool:
    """Whether ``value`` is one of ``known_ids``, allowing a version on either side."""
    bare = strip_version(pd.Index([value]))[0]
    if value in known_ids or bare in known_ids:
        return True
    known = pa.array(np.asarray(known_ids, dtype=object), type=pa.string())
    return bool(pc.any(pc.starts_with(known, bare + ".")).as_py())


def read_count_table(path: str | os.PathLike[str]) -> tuple[pd.Index, pd.Index, np.ndarray]:
    """Read a transcript x sample count table.

    The first column holds transcript ids; every other column is one sample (its header is
    the sample id). Values are read as float32.

    Returns
    -------
    transcript_ids : pd.Index, (n_transcripts,)
    sample_ids : pd.Index, (n_samples,)
    counts : np.ndarray, float32, (n_transcripts, n_samples)

    Raises
    ------
    InputError
        Missing/unreadable file, no sample columns, a non-numeric cell, duplicate ids.
    """
    path = _require_file(path, "count table")
    header = _read_delimited(path, "count table", nrows=0) if path.stat().st_size else None
    if header is None or header.shape[1] < 2:
        found = [] if header is None else list(header.columns)
        msg = (
            f"count table {path} needs a transcript id column and at least one sample column; "
            f"found columns {found}"
        )
        raise InputError(msg)
    id_col = header.columns[0]
    dtypes: dict[str, type] = dict.fromkeys(header.columns[1:], np.float32)
    dtypes[id_col] = str
    table = _read_delimited(path, "count table", dtype=dtypes, index_col=0)
    ids = pd.Index(table.index.astype(str), name="transcript_id")
    if ids.has_duplicates:
        dup = ids[ids.duplicated()].unique()
        msg = f"count table {path} has {len(dup)} duplicated transcript id(s), e.g. {list(dup[:3])}"
        raise InputError(msg)
    samples = pd.Index(table.columns.astype(str), name="sample_id")
    if samples.has_duplicates:
        msg = f"count table {path} has duplicated sample columns {list(samples[samples.duplicated()][:5])}"
        raise InputError(msg)
    return ids, samples, table.to_numpy(dtype=np.float32, copy=False)


def read_tx2gene(path: str | os.PathLike[str], *, known_ids: pd.Index | None = None) -> pd.DataFrame:
    """Read a transcript-to-gene map.

    Column rule: when the header has both ``transcript_id`` and ``gene_id`` those are used;
    otherwise the FIRST column is the transcript id and the SECOND the gene id (so
    ``transcript_id, gene_id_v27, match`` works); other columns are ignored. A file without
    a header is recognised when its first cell is one of ``known_ids`` (the count table's
    transcript ids, versioned or not). Rows with an empty gene id mean "no mapping".

    Returns
    -------
    pd.DataFrame
        Columns ``transcript_id``, ``gene_id`` (str; missing gene ids dropped), one row per
        transcript id (the first row wins when an id repeats).
    """
    path = _require_file(path, "transcript-to-gene table")
    table = _read_delimited(path, "transcript-to-gene table", dtype=str, header=None, keep_default_na=False)
    if table.shape[1] < 2:
        msg = (
            f"transcript-to-gene table {path} needs two columns (transcript id, gene id); "
            f"found {table.shape[1]} column(s) using separator {delimiter_of(path)!r}"
        )
        raise InputError(msg)
    first = [str(v) for v in table.iloc[0]]
    has_header = True
    if known_ids is not None and len(known_ids):
        has_header = not _is_known_id(first[0], known_ids)
    if has_header:
        table.columns = first
        table = table.iloc[1:]
        if "transcript_id" in first and "gene_id" in first:
            table = table[["transcript_id", "gene_id"]]
        else:
            table = table.iloc[:, :2]
    else:
        table = table.iloc[:, :2]
    table.columns = ["transcript_id", "gene_id"]
    gene = table["gene_id"].str.strip()
    table = table.assign(gene_id=gene)[gene.ne("") & ~gene.str.upper().isin(["NA", "NAN", "NONE", "NULL"])]
    return table.drop_duplicates("transcript_id").reset_index(drop=True)


def read_sample_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a sample table (CSV/TSV): one row per sample, a header row, any columns."""
    path = _require_file(path, "sample table")
    table = _read_delimited(path, "sample table")
    if table.empty:
        msg = f"sample table {path} has no rows; expected one row per sample"
        raise InputError(msg)
    table.columns = table.columns.astype(str)
    return table


def read_lengths(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a transcript length table: transcript id first, then ``length`` and/or
    ``mean_effective_length`` (other numeric columns kept as they are).

    Returns
    -------
    pd.DataFrame
        Indexed by transcript id, numeric columns only.
    """
    path = _require_file(path, "length table")
    table = _read_delimited(path, "length table", index_col=0)
    table.index = table.index.astype(str)
    numeric = table.select_dtypes("number")
    if numeric.shape[1] == 0:
        msg = f"length table {path} has no numeric columns; columns are {list(table.columns)}"
        raise InputError(msg)
    if table.index.has_duplicates:
        dup = list(table.index[table.index.duplicated()][:3])
        msg = f"length table {path} has duplicated transcript ids, e.g. {dup}"
        raise InputError(msg)
    return numeric.astype(np.float64)
