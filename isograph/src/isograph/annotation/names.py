"""Gene names: found at import (user table, GTF or annotation database), carried into every table."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from isograph.annotation.orgdb import OrgDb, strip_version
from omicsrun import InputError

if TYPE_CHECKING:
    from isograph.bundle import Bundle

_GTF_SUFFIXES = (".gtf", ".gtf.gz", ".gff", ".gff.gz")


def _match(gene_ids: pd.Index, names: pd.Series) -> pd.Series:
    """Names reindexed on ``gene_ids``: exact id first, then the id without its version."""
    names = names.dropna()
    names = names[~names.index.duplicated()]
    exact = pd.Series(gene_ids.map(names.to_dict()), index=gene_ids)
    unversioned = pd.Series(names.to_numpy(), index=strip_version(names.index))
    unversioned = unversioned[~unversioned.index.duplicated()]
    fallback = pd.Series(pd.Index(strip_version(gene_ids)).map(unversioned.to_dict()), index=gene_ids)
    return exact.fillna(fallback).rename("gene_name")


def _names_from_table(path: Path) -> pd.Series:
    sep = "," if path.name.lower().removesuffix(".gz").endswith(".csv") else "\t"
    table = pd.read_csv(path, sep=sep, dtype=str)
    if {"gene_id", "gene_name"} <= set(table.columns):
        ids, names = table["gene_id"], table["gene_name"]
    elif table.shape[1] >= 2:
        ids, names = table.iloc[:, 0], table.iloc[:, 1]
    else:
        msg = (
            f"gene-name table {str(path)!r} needs columns gene_id and gene_name (or two columns); "
            f"found {list(table.columns)}"
        )
        raise InputError(msg)
    return pd.Series(names.to_numpy(), index=ids.astype(str).to_numpy())


def gene_names_from_source(gene_ids: pd.Index | list[str], source: str | os.PathLike[str]) -> pd.Series:
    """Gene name per gene id from one source.

    Parameters
    ----------
    gene_ids
        Gene ids (Ensembl ids with or without version, Entrez ids or symbols), shape (n_genes,).
    source
        ``"human"``/``"mouse"`` (the installed org.*.eg.db), a path to an org.*.eg.sqlite file,
        a GTF (``.gtf``/``.gtf.gz``: its ``gene_name`` attribute), or a table (TSV/CSV with
        ``gene_id`` and ``gene_name``, else its first two columns).

    Returns
    -------
    pandas.Series
        Index ``gene_ids``, values names (NaN where unknown), name ``gene_name``.

    Raises
    ------
    InputError
        Missing file, unreadable table, or annotation database not installed.
    """
    index = pd.Index([str(g) for g in gene_ids])
    text = str(source)
    if text in ("human", "mouse") or text.endswith(".sqlite"):
        db = OrgDb.open(text)
        return _match(index, db.symbols(list(index)))
    path = Path(source)
    if not path.is_file():
        msg = (
            f"gene-name source {text!r} does not exist; expected 'human', 'mouse', an org.*.eg.sqlite file, "
            "a GTF or a gene_id/gene_name table"
        )
        raise InputError(msg)
    if path.name.lower().endswith(_GTF_SUFFIXES):
        from isograph.annotate.gtf import read_gtf

        genes = read_gtf(path).gene_names()
        return _match(index, genes)
    return _match(index, _names_from_table(path))


def resolve_name_source(choice: str, gene_ids: pd.Index) -> str | None:
    """The gene-name source to use for ``choice`` (``auto``, ``none``, ``human``, a path...).

    ``auto`` picks the installed human (or mouse) org.*.eg.db when the ids look like Ensembl
    human (``ENSG``) or mouse (``ENSMUSG``) gene ids, else ``None`` (no names).
    """
    if choice == "none":
        return None
    if choice != "auto":
        return choice
    from isograph.annotation.orgdb import find_orgdb

    head = [str(g) for g in gene_ids[:50]]
    species = (
        "mouse"
        if any(g.startswith("ENSMUSG") for g in head)
        else "human"
        if any(g.startswith("ENSG") for g in head)
        else None
    )
    if species is None or find_orgdb(species) is None:  # type: ignore[arg-type]
        return None
    return species


def attach_gene_names(bundle: Bundle, source: str | os.PathLike[str]) -> Bundle:
    """A copy of ``bundle`` whose gene table has ``gene_name`` from ``source``.

    Names already in the gene table are kept where the source knows none. The source's name
    and the number of named genes go into the provenance (``gene_names_source``,
    ``n_genes_named``).
    """
    found = gene_names_from_source(bundle.gene_ids, source)
    genes = bundle.genes.copy()
    previous = genes["gene_name"] if "gene_name" in genes.columns else pd.Series(pd.NA, index=genes.index)
    names = pd.Series(found.to_numpy(), index=genes.index, dtype=object)
    genes["gene_name"] = names.where(names.notna(), previous)
    provenance = {
        **bundle.provenance,
        "gene_names_source": str(source),
        "n_genes_named": str(int(genes["gene_name"].notna().sum())),
    }
    return dataclasses.replace(bundle, genes=genes, provenance=provenance)


def with_gene_names(genes: pd.DataFrame, *tables: pd.DataFrame | None) -> list[pd.DataFrame | None]:
    """Append ``gene_name`` (for ``gene_id``) and ``gene_a_name``/``gene_b_name`` to output tables.

    Parameters
    ----------
    genes
        The bundle's gene table; without a ``gene_name`` column the tables come back unchanged.
    *tables
        Tables with ``gene_id`` or ``gene_a``/``gene_b`` columns (``None`` passes through).
    """
    if "gene_name" not in genes.columns:
        return list(tables)
    lookup = pd.Series(genes["gene_name"].to_numpy(), index=genes["gene_id"].astype(str).to_numpy())
    lookup = lookup[~lookup.index.duplicated()]
    out: list[pd.DataFrame | None] = []
    for table in tables:
        if table is None:
            out.append(None)
            continue
        table = table.copy()
        for id_key, name_key in (
            ("gene_id", "gene_name"),
            ("gene_a", "gene_a_name"),
            ("gene_b", "gene_b_name"),
        ):
            if id_key in table.columns and name_key not in table.columns:
                values = table[id_key].astype(str).map(lookup).astype(object)
                table[name_key] = values  # appended: existing column positions stay as they were
        out.append(table)
    return out
