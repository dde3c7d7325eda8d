"""Over-representation of GO biological processes and KEGG pathways in modules (offline).

For each module and gene-set source: hypergeometric upper tail of the overlap between the
module's genes and each term, with the universe = the genes that entered the fit (mapped to
Entrez through the same org.*.eg.db file), terms restricted to the universe and to
``min_size..max_size`` genes there, Benjamini-Hochberg over the terms of a module and source.
This is the test of clusterProfiler's ``enricher``/``enrichGO`` with ``universe`` set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse, stats

from isograph.annotation.orgdb import GeneSetSource, OrgDb
from isograph.fit.stats import benjamini_hochberg

COLUMNS = (
    "module_id",
    "source",
    "term_id",
    "term_name",
    "n_module",
    "n_term",
    "n_overlap",
    "n_universe",
    "expected",
    "fold_enrichment",
    "pvalue",
    "qvalue",
    "genes",
)


def over_representation(
    module_genes: Mapping[str, Sequence[str]],
    universe: Sequence[str],
    gene_sets: pd.DataFrame,
    *,
    source: str,
    symbols: pd.Series | None = None,
    min_size: int = 10,
    max_size: int = 500,
) -> pd.DataFrame:
    """Hypergeometric over-representation of every term in every module.

    Parameters
    ----------
    module_genes
        Module id -> gene keys (Entrez ids, or any key used in ``gene_sets``).
    universe
        Every gene key that could have been in a module.
    gene_sets
        ``term_id``, ``term_name``, ``entrez_id`` (the gene key).
    source
        Label written in the ``source`` column.
    symbols
        Gene key -> symbol, for the ``genes`` column.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, sorted by module then p value.
    """
    universe_index = pd.Index(pd.unique(np.asarray(universe, dtype=str)))
    sets = gene_sets[gene_sets["entrez_id"].astype(str).isin(universe_index)]
    term_codes, terms = pd.factorize(sets["term_id"])
    gene_codes = universe_index.get_indexer(sets["entrez_id"].astype(str))
    membership = sparse.csr_matrix(
        (np.ones(len(sets), dtype=np.float64), (term_codes, gene_codes)),
        shape=(len(terms), len(universe_index)),
    )
    membership.data[:] = 1.0
    sizes = np.asarray(membership.sum(axis=1)).ravel()
    keep = (sizes >= min_size) & (sizes <= max_size)
    membership, terms, sizes = membership[keep], terms[keep], sizes[keep]
    names = sets.drop_duplicates("term_id").set_index("term_id")["term_name"].reindex(terms)
    n_universe = len(universe_index)
    keys = universe_index.to_numpy(dtype=str)
    labels = np.asarray(
        symbols.reindex(universe_index).fillna(pd.Series(keys, index=universe_index)).astype(str)
        if symbols is not None
        else keys,
        dtype=object,
    )
    frames = []
    for module_id, genes in module_genes.items():
        inside = np.zeros(n_universe)
        where = universe_index.get_indexer(pd.Index(np.asarray(genes, dtype=str)).unique())
        inside[where[where >= 0]] = 1.0
        n_module = int(inside.sum())
        if n_module == 0 or len(terms) == 0:
            continue
        overlap = membership @ inside
        hit = overlap > 0
        # P(X >= k) for X ~ Hypergeom(N, K = term size, n = module size).
        p = stats.hypergeom.sf(overlap[hit] - 1, n_universe, sizes[hit], n_module)
        rows = np.flatnonzero(hit)
        # Member genes of every hit term at once: the nonzeros of (term rows x module genes).
        # (A sparse-times-dense product can store explicit zeros: keep only true members.)
        members = sparse.coo_matrix(membership[rows].multiply(inside[None, :]))
        real = members.data != 0
        pairs = pd.DataFrame({"row": members.row[real], "gene": labels[members.col[real]]}).sort_values(
            ["row", "gene"]
        )
        joined = pairs.groupby("row")["gene"].agg(",".join).reindex(range(len(rows)), fill_value="")
        expected = sizes[hit] * n_module / n_universe
        frame = pd.DataFrame(
            {
                "module_id": module_id,
                "source": source,
                "term_id": terms[hit],
                "term_name": names.to_numpy()[hit],
                "n_module": n_module,
                "n_term": sizes[hit].astype(np.int64),
                "n_overlap": overlap[hit].astype(np.int64),
                "n_universe": n_universe,
                "expected": expected,
                "fold_enrichment": overlap[hit] / expected,
                "pvalue": p,
                "genes": joined.to_numpy(),
            }
        )
        # BH over the terms that share at least one gene with the module (clusterProfiler's rule).
        frame["qvalue"] = benjamini_hochberg(p)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    out = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
    return out.sort_values(["module_id", "pvalue", "term_id"], kind="stable").reset_index(drop=True)


def enrich_modules(
    modules: pd.DataFrame,
    module_ids: Sequence[str],
    *,
    source: str = "human",
    sources: Sequence[GeneSetSource] = ("go_bp", "kegg"),
    min_size: int = 10,
    max_size: int = 500,
    extra_lists: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """GO BP and KEGG over-representation of fitted modules.

    Parameters
    ----------
    modules
        The fit's ``modules.parquet`` (``gene_id``, ``module_id``); every gene in it is the universe.
    module_ids
        Modules to test.
    source
        ``"human"``, ``"mouse"`` or a path to an org.*.eg.sqlite file.
    extra_lists
        More gene lists to test against the same universe (label -> gene ids), e.g. the top
        positive and top negative drivers of a module (``M000:positive``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS` (``source`` is ``GO_BP`` or ``KEGG``).
    """
    db = OrgDb.open(source)
    gene_ids = modules["gene_id"].astype(str)
    mapped = db.map_ids(list(gene_ids))
    entrez = pd.Series(mapped["entrez_id"].to_numpy(), index=gene_ids.to_numpy())
    entrez = entrez[entrez.notna()]
    entrez = entrez[~entrez.index.duplicated()]
    universe = entrez.astype(str).tolist()
    labels = modules["module_id"].astype(str).to_numpy()
    lists: dict[str, list[str]] = {
        m: entrez.reindex(gene_ids[labels == m]).dropna().astype(str).tolist() for m in module_ids
    }
    for label, genes in (extra_lists or {}).items():
        lists[label] = entrez.reindex(pd.Index([str(g) for g in genes])).dropna().astype(str).tolist()
    symbols = pd.Series(mapped["symbol"].to_numpy(), index=mapped["entrez_id"].astype(str).to_numpy())
    symbols = symbols[~symbols.index.duplicated()]
    frames = [
        over_representation(
            lists,
            universe,
            db.gene_sets(kind),
            source={"go_bp": "GO_BP", "kegg": "KEGG"}[kind],
            symbols=symbols,
            min_size=min_size,
            max_size=max_size,
        )
        for kind in sources
    ]
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["module_id", "pvalue"], kind="stable").reset_index(drop=True)
