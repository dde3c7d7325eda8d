"""Columnar GTF reading (GENCODE and Ensembl dialects) with a Parquet cache.

The file is read by polars' multi-threaded CSV reader (tab separated, ``#`` comments) and
the attributes the structural labels need are pulled out with vectorised regular
expressions; no Python loop touches a line. GENCODE writes ``gene_type``/``transcript_type``
and a single ``UTR`` feature; Ensembl writes ``gene_biotype``/``transcript_biotype``,
``five_prime_utr``/``three_prime_utr`` and chromosome names without ``chr``. Both come out
in one schema.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from omicsrun import InputError
from omicsrun.atomic import write_bytes

GTF_CACHE_FORMAT = "isograph-gtf-cache"
GTF_CACHE_VERSION = 1
_FEATURES = (
    "gene",
    "transcript",
    "exon",
    "CDS",
    "UTR",
    "five_prime_utr",
    "three_prime_utr",
    "start_codon",
    "stop_codon",
)
_ATTRIBUTES = {
    "gene_id": r'gene_id "([^"]+)"',
    "transcript_id": r'transcript_id "([^"]+)"',
    "gene_name": r'gene_name "([^"]+)"',
    "transcript_name": r'transcript_name "([^"]+)"',
    "gene_type": r'gene_(?:type|biotype) "([^"]+)"',
    "transcript_type": r'transcript_(?:type|biotype) "([^"]+)"',
}


@dataclass(frozen=True, eq=False)
class GtfTable:
    """A parsed GTF: one row per kept feature line.

    Attributes
    ----------
    frame
        pandas DataFrame with ``seqname``, ``feature``, ``start``, ``end`` (1-based,
        inclusive), ``strand``, ``gene_id``, ``transcript_id``, ``gene_name``,
        ``transcript_name``, ``gene_type``, ``transcript_type``.
    dialect
        ``"gencode"`` or ``"ensembl"``.
    """

    frame: pd.DataFrame
    dialect: str

    def gene_names(self) -> pd.Series:
        """``gene_id`` -> ``gene_name`` (one per gene)."""
        genes = self.frame[["gene_id", "gene_name"]].dropna().drop_duplicates("gene_id")
        return pd.Series(genes["gene_name"].to_numpy(), index=genes["gene_id"].to_numpy(), name="gene_name")

    def transcripts(self) -> pd.DataFrame:
        """One row per transcript: ids, names, types, strand, start, end."""
        tx = self.frame[self.frame["feature"] == "transcript"]
        if tx.empty:  # some GTFs carry exon lines only
            ex = self.frame[self.frame["feature"] == "exon"]
            tx = ex.groupby("transcript_id", as_index=False, sort=False).agg(
                seqname=("seqname", "first"),
                start=("start", "min"),
                end=("end", "max"),
                strand=("strand", "first"),
                gene_id=("gene_id", "first"),
                gene_name=("gene_name", "first"),
                transcript_name=("transcript_name", "first"),
                gene_type=("gene_type", "first"),
                transcript_type=("transcript_type", "first"),
            )
        return tx.drop(columns=["feature"], errors="ignore").reset_index(drop=True)


def _read_polars(path: Path):  # type: ignore[no-untyped-def]  # polars frame, imported lazily
    import polars as pl

    # A lazy scan collected by the streaming engine: the file is read in batches, so the raw
    # attribute strings of a 1.2 GB GTF never sit in memory all at once.
    attr = pl.col("attr")
    query = (
        pl.scan_csv(
            path,
            separator="\t",
            has_header=False,
            comment_prefix="#",
            quote_char=None,
            new_columns=["seqname", "source", "feature", "start", "end", "score", "strand", "frame", "attr"],
            schema_overrides={"start": pl.Int64, "end": pl.Int64},
        )
        .select(["seqname", "feature", "start", "end", "strand", "attr"])
        .filter(pl.col("feature").is_in(list(_FEATURES)))
        .with_columns([attr.str.extract(pattern, 1).alias(name) for name, pattern in _ATTRIBUTES.items()])
        .drop("attr")
    )
    try:
        return query.collect(engine="streaming")
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        msg = f"cannot read {str(path)!r} as a GTF (9 tab-separated columns expected): {first}"
        raise InputError(msg) from None


def read_gtf(path: str | os.PathLike[str]) -> GtfTable:
    """Parse a GTF (plain or gzip) into a :class:`GtfTable`.

    Raises
    ------
    InputError
        Missing or malformed file, or a file without ``gene_id`` attributes.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"GTF file {str(path)!r} does not exist"
        raise InputError(msg)
    frame = _read_polars(path)
    if frame.height == 0 or frame["gene_id"].null_count() == frame.height:
        msg = f"{str(path)!r} has no GTF feature lines with a gene_id attribute"
        raise InputError(msg)
    is_ensembl = bool((frame["feature"] == "five_prime_utr").any()) or not bool(
        (frame["feature"] == "UTR").any()
    )
    pdf = frame.to_pandas(use_pyarrow_extension_array=False)
    for key in ("seqname", "feature", "strand", "gene_type", "transcript_type"):
        pdf[key] = pdf[key].astype("category")
    return GtfTable(frame=pdf, dialect="ensembl" if is_ensembl else "gencode")


def _source_stamp(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def load_gtf(path: str | os.PathLike[str], *, cache: str | os.PathLike[str] | None = None) -> GtfTable:
    """Read a GTF through a Parquet cache.

    The cache records the GTF's name, size and modification time; a stale or foreign cache
    is rebuilt (written atomically), never trusted.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    gtf = Path(path)
    if cache is not None and Path(cache).is_file():
        # Id and name columns come back dictionary-encoded (pandas categoricals): no Python
        # string per row, about 3x faster than plain strings on a full GENCODE cache.
        cached = pq.read_table(
            cache, read_dictionary=["gene_id", "transcript_id", "gene_name", "transcript_name"]
        )
        meta = json.loads((cached.schema.metadata or {}).get(b"isograph", b"{}"))
        if (
            meta.get("format") == GTF_CACHE_FORMAT
            and meta.get("format_version") == GTF_CACHE_VERSION
            and gtf.is_file()
            and meta.get("source") == _source_stamp(gtf)
        ):
            return GtfTable(frame=cached.to_pandas(), dialect=str(meta["dialect"]))
    table = read_gtf(gtf)
    if cache is not None:
        arrow = pa.Table.from_pandas(table.frame, preserve_index=False)
        meta = {
            "format": GTF_CACHE_FORMAT,
            "format_version": GTF_CACHE_VERSION,
            "dialect": table.dialect,
            "source": _source_stamp(gtf),
        }
        arrow = arrow.replace_schema_metadata(
            {**(arrow.schema.metadata or {}), b"isograph": json.dumps(meta)}
        )
        sink = pa.BufferOutputStream()
        pq.write_table(arrow, sink)
        write_bytes(cache, sink.getvalue().to_pybytes())
    return table
