"""Structural labels of transcript switch pairs (what the switch changes in the transcript).

A switch pair is ``(gene_id, transcript_up, transcript_down)``: usage of ``transcript_up``
rises with the module eigengene while ``transcript_down`` falls. Labels describe the up
transcript relative to the down one:

- ``exon_gain`` / ``exon_loss``: an exon of one transcript overlaps no exon of the other;
- ``alt_tss`` / ``alt_tes``: the 5' / 3' ends differ (strand aware); ``alt_first_exon`` /
  ``alt_last_exon``: the first / last exons do not overlap at all;
- ``cds_change``: coding sequences differ (coordinates, or coding vs non-coding);
- ``utr5_change`` / ``utr3_change``: 5' / 3' UTR bases differ (GENCODE's single ``UTR``
  feature is split into 5' and 3' by its position relative to the CDS);
- ``biotype_switch``: the transcript types differ (e.g. protein_coding ->
  nonsense_mediated_decay or retained_intron).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from isograph.annotate.gtf import GtfTable
from omicsrun import InputError

LABELS = (
    "exon_gain",
    "exon_loss",
    "alt_tss",
    "alt_tes",
    "alt_first_exon",
    "alt_last_exon",
    "cds_change",
    "utr5_change",
    "utr3_change",
    "biotype_switch",
)
SWITCH_PAIR_COLUMNS = ("gene_id", "transcript_up", "transcript_down")


def read_switch_pairs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a switch-pair table (TSV/CSV/Parquet with ``gene_id``, ``transcript_up``, ``transcript_down``)."""
    path = Path(path)
    if not path.is_file():
        msg = f"switch-pair table {str(path)!r} does not exist"
        raise InputError(msg)
    if path.suffix == ".parquet":
        pairs = pd.read_parquet(path)
    else:
        sep = "," if path.name.lower().removesuffix(".gz").endswith(".csv") else "\t"
        pairs = pd.read_csv(path, sep=sep, dtype=str)
    missing = [c for c in SWITCH_PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        msg = (
            f"switch-pair table {str(path)!r} has no column {missing[0]!r}; "
            f"expected {list(SWITCH_PAIR_COLUMNS)}, found {list(pairs.columns)}"
        )
        raise InputError(msg)
    return pairs


def _unversioned(ids: pd.Series) -> pd.Series:
    """Ids without a trailing ``.N`` version, vectorised (one rule for the GTF and the pairs)."""
    return ids.astype(object).fillna("").astype(str).str.replace(r"\.\d+$", "", regex=True)


def _intervals(frame: pd.DataFrame, feature: str | tuple[str, ...]) -> dict[str, np.ndarray]:
    kinds = (feature,) if isinstance(feature, str) else feature
    rows = frame[frame["feature"].isin(kinds)].sort_values(["transcript_id", "start"])
    out: dict[str, np.ndarray] = {}
    for tx, group in rows.groupby("transcript_id", sort=False, observed=True):
        out[str(tx)] = group[["start", "end"]].to_numpy(dtype=np.int64)
    return out


def _bases(intervals: np.ndarray | None) -> set[int]:
    # UTR and CDS sets are small (a few kb); a set of positions compares them exactly.
    if intervals is None:
        return set()
    return {int(p) for s, e in intervals for p in range(int(s), int(e) + 1)}


def _any_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each interval of ``a`` (k, 2): does it overlap any interval of ``b`` (m, 2)?"""
    if len(b) == 0:
        return np.zeros(len(a), dtype=bool)
    return np.asarray(((a[:, None, 0] <= b[None, :, 1]) & (b[None, :, 0] <= a[:, None, 1])).any(axis=1))


def _utr_split(utr: np.ndarray | None, cds: np.ndarray | None, strand: str) -> tuple[np.ndarray, np.ndarray]:
    empty = np.zeros((0, 2), dtype=np.int64)
    if utr is None or len(utr) == 0:
        return empty, empty
    if cds is None or len(cds) == 0:
        return utr, empty
    before = utr[:, 1] < cds[:, 0].min()
    after = utr[:, 0] > cds[:, 1].max()
    five, three = (before, after) if strand == "+" else (after, before)
    return utr[five], utr[three]


def annotate_switch_pairs(gtf: GtfTable, pairs: pd.DataFrame) -> pd.DataFrame:
    """Label every switch pair against a GTF.

    Parameters
    ----------
    gtf
        Parsed annotation (:func:`isograph.annotate.gtf.load_gtf`).
    pairs
        ``gene_id``, ``transcript_up``, ``transcript_down`` (+ any other columns, kept).
        Transcript ids match the GTF exactly or, failing that, without version.

    Returns
    -------
    pandas.DataFrame
        The pairs plus ``found`` (both transcripts in the GTF), ``labels`` (``;``-joined),
        one boolean column per label of :data:`LABELS`, ``biotype_up``/``biotype_down``,
        ``n_exons_up``/``n_exons_down``, ``cds_length_up``/``cds_length_down``.
    """
    frame = gtf.frame
    up_ids = _unversioned(pairs["transcript_up"])
    down_ids = _unversioned(pairs["transcript_down"])
    want = set(up_ids) | set(down_ids)
    # Vectorised version stripping over the whole GTF (a Python loop would touch millions of rows).
    tx_unversioned = _unversioned(frame["transcript_id"])
    sub = frame[tx_unversioned.isin(want)].copy()
    sub["transcript_id"] = tx_unversioned[sub.index].to_numpy()
    exons = _intervals(sub, "exon")
    cds = _intervals(sub, "CDS")
    utr_generic = _intervals(sub, "UTR")
    utr5_ens = _intervals(sub, "five_prime_utr")
    utr3_ens = _intervals(sub, "three_prime_utr")
    info = sub.dropna(subset=["transcript_id"]).drop_duplicates("transcript_id").set_index("transcript_id")

    def utrs(tx: str) -> tuple[np.ndarray, np.ndarray]:
        if tx in utr5_ens or tx in utr3_ens:
            empty = np.zeros((0, 2), dtype=np.int64)
            return utr5_ens.get(tx, empty), utr3_ens.get(tx, empty)
        return _utr_split(utr_generic.get(tx), cds.get(tx), str(info.at[tx, "strand"]))

    rows = []
    for up, down in zip(up_ids, down_ids, strict=True):
        row: dict[str, object] = dict.fromkeys(LABELS, False)
        if up not in exons or down not in exons:
            row.update(found=False, labels="", biotype_up=None, biotype_down=None)
            row.update(n_exons_up=0, n_exons_down=0, cds_length_up=0, cds_length_down=0)
            rows.append(row)
            continue
        strand = str(info.at[up, "strand"])
        ex_up, ex_down = exons[up], exons[down]
        row["exon_gain"] = bool((~_any_overlap(ex_up, ex_down)).any())
        row["exon_loss"] = bool((~_any_overlap(ex_down, ex_up)).any())
        first = 0 if strand == "+" else -1
        last = -1 if strand == "+" else 0
        five_up = ex_up[first, 0] if strand == "+" else ex_up[first, 1]
        five_down = ex_down[first, 0] if strand == "+" else ex_down[first, 1]
        three_up = ex_up[last, 1] if strand == "+" else ex_up[last, 0]
        three_down = ex_down[last, 1] if strand == "+" else ex_down[last, 0]
        row["alt_tss"] = bool(five_up != five_down)
        row["alt_tes"] = bool(three_up != three_down)
        row["alt_first_exon"] = not bool(_any_overlap(ex_up[[first]], ex_down[[first]])[0])
        row["alt_last_exon"] = not bool(_any_overlap(ex_up[[last]], ex_down[[last]])[0])
        cds_up, cds_down = _bases(cds.get(up)), _bases(cds.get(down))
        row["cds_change"] = cds_up != cds_down
        u5_up, u3_up = utrs(up)
        u5_down, u3_down = utrs(down)
        row["utr5_change"] = _bases(u5_up) != _bases(u5_down)
        row["utr3_change"] = _bases(u3_up) != _bases(u3_down)
        bt_up, bt_down = str(info.at[up, "transcript_type"]), str(info.at[down, "transcript_type"])
        row["biotype_switch"] = bt_up != bt_down
        labels = [name for name in LABELS if row[name] and name != "biotype_switch"]
        if row["biotype_switch"]:
            labels.append(f"biotype:{bt_down}->{bt_up}")
        row.update(
            found=True,
            labels=";".join(labels),
            biotype_up=str(bt_up),
            biotype_down=str(bt_down),
            n_exons_up=len(ex_up),
            n_exons_down=len(ex_down),
            cds_length_up=len(cds_up),
            cds_length_down=len(cds_down),
        )
        rows.append(row)
    labelled = pd.DataFrame(rows, index=pairs.index)
    order = ["found", "labels", *LABELS, "biotype_up", "biotype_down"]
    order += ["n_exons_up", "n_exons_down", "cds_length_up", "cds_length_down"]
    return pd.concat([pairs.reset_index(drop=True), labelled[order].reset_index(drop=True)], axis=1)
