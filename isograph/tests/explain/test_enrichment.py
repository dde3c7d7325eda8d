import numpy as np
import pandas as pd
import pytest
from scipy import stats

from isograph.annotation.orgdb import find_orgdb
from isograph.explain.enrichment import enrich_modules, over_representation
from isograph.fit.stats import benjamini_hochberg


def test_over_representation_matches_fisher_and_finds_planted_term():
    rng = np.random.default_rng(0)
    universe = [str(i) for i in range(1000)]
    planted = universe[:40]
    sets = [("T_planted", planted[:30] + universe[500:520])]
    sets += [
        (f"T{k}", list(rng.choice(universe, size=int(rng.integers(15, 80)), replace=False)))
        for k in range(50)
    ]
    gene_sets = pd.DataFrame(
        [(term, term, gene) for term, genes in sets for gene in genes],
        columns=["term_id", "term_name", "entrez_id"],
    )
    module = planted + universe[900:960]
    table = over_representation({"M000": module}, universe, gene_sets, source="TEST")
    assert table.iloc[0]["term_id"] == "T_planted"
    for _, row in table.head(10).iterrows():
        members = set(gene_sets.loc[gene_sets["term_id"] == row["term_id"], "entrez_id"])
        a = len(members & set(module))
        b = len(module) - a
        c = len(members) - a
        d = len(universe) - a - b - c
        ref = stats.fisher_exact([[a, b], [c, d]], alternative="greater").pvalue
        assert row["n_overlap"] == a
        # The genes column lists the overlap, not the whole term.
        assert set(row["genes"].split(",")) == members & set(module)
        assert row["pvalue"] == pytest.approx(ref, rel=1e-8)
    np.testing.assert_allclose(table["qvalue"], benjamini_hochberg(table["pvalue"].to_numpy()))


@pytest.mark.skipif(
    find_orgdb("human") is None, reason="org.Hs.eg.db not installed (tools/install-system-deps.sh)"
)
def test_interferon_genes_enrich_interferon_gamma_response():
    from isograph.annotation.orgdb import OrgDb

    db = OrgDb.open("human")
    universe = db.genes()["symbol"].head(15000).tolist()
    ifng = [
        "STAT1",
        "IRF1",
        "GBP1",
        "GBP2",
        "GBP5",
        "CIITA",
        "IRF8",
        "CXCL9",
        "CXCL10",
        "IDO1",
        "SOCS1",
        "JAK2",
    ]
    modules = pd.DataFrame(
        {"gene_id": universe + ifng, "module_id": ["unassigned"] * len(universe) + ["M000"] * len(ifng)}
    )
    table = enrich_modules(modules, ["M000"], sources=("go_bp",))
    hit = table[table["term_id"] == "GO:0034341"]  # response to type II interferon
    assert len(hit) == 1 and hit["qvalue"].iloc[0] < 1e-6
    kegg = enrich_modules(modules, ["M000"], sources=("kegg",))
    jak_stat = kegg[kegg["term_id"] == "hsa04630"]  # named from the shipped KEGG titles
    assert jak_stat["term_name"].tolist() == ["JAK-STAT signaling pathway"]
    assert jak_stat["qvalue"].iloc[0] < 0.01
