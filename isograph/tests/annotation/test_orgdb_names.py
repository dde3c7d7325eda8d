import sqlite3

import pandas as pd
import pytest

import isograph.annotation.orgdb
from isograph.annotation import (
    OrgDb,
    attach_gene_names,
    find_orgdb,
    gene_names_from_source,
    kegg_pathway_names,
    with_gene_names,
)
from isograph.fixtures import make_fixture
from omicsrun import InputError
from omicsrun.testing import require_shared

needs_orgdb = pytest.mark.skipif(find_orgdb("human") is None, reason="org.Hs.eg.db not installed")


@needs_orgdb
def test_map_ids_by_ensembl_with_and_without_version_symbol_and_entrez():
    db = OrgDb.open("human")
    table = db.map_ids(["ENSG00000141510.16", "ENSG00000141510", "TP53", "7157", "ENSG99999999999", "IRF1"])
    assert list(table["entrez_id"][:4]) == ["7157"] * 4
    assert list(table["symbol"][:4]) == ["TP53"] * 4
    assert pd.isna(table["symbol"][4])
    assert table["entrez_id"][5] == "3659"


def test_missing_database_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        OrgDb.open(tmp_path / "nope.sqlite")


def test_names_from_gtf_and_table_versioned_fallback(tmp_path):
    gtf = require_shared("gtf/gencode.v29.chr1_head119genes.gtf.gz")
    names = gene_names_from_source(["ENSG00000187634.11", "ENSG00000187634", "ENSG00000223972.9", "X"], gtf)
    assert list(names[:3]) == ["SAMD11", "SAMD11", "DDX11L1"]
    assert pd.isna(names.iloc[3])
    table = tmp_path / "names.tsv"
    pd.DataFrame({"gene_id": ["G00001", "G00002"], "gene_name": ["ALPHA", "BETA"]}).to_csv(
        table, sep="\t", index=False
    )
    bundle = make_fixture("core_v1", "standard", seed=0)
    named = attach_gene_names(bundle, table)
    assert list(named.genes["gene_name"][:2]) == ["ALPHA", "BETA"]
    # Names the source lacks keep the gene table's own.
    assert named.genes["gene_name"][2] == bundle.genes["gene_name"][2]
    assert named.provenance["n_genes_named"] == str(bundle.n_genes)
    modules = pd.DataFrame({"gene_id": ["G00002", "G00009"], "module_id": ["M000", "M000"]})
    edges = pd.DataFrame({"gene_a": ["G00001"], "gene_b": ["G00002"], "weight": [0.5]})
    out_modules, out_edges, none = with_gene_names(named.genes, modules, edges, None)
    assert list(out_modules.columns) == ["gene_id", "module_id", "gene_name"]
    assert out_modules["gene_name"][0] == "BETA"
    assert out_modules["gene_name"][1] == named.genes.set_index("gene_id").loc["G00009", "gene_name"]
    assert (out_edges["gene_a_name"][0], out_edges["gene_b_name"][0]) == ("ALPHA", "BETA")
    assert none is None
    unnamed = bundle.genes.drop(columns="gene_name")
    assert with_gene_names(unnamed, modules)[0] is modules


def test_shipped_kegg_names_are_well_formed():
    names = kegg_pathway_names()
    assert names.index.is_unique and names.index.str.fullmatch(r"\d{5}").all()
    assert (names.str.len() > 0).all() and (names.str.strip() == names).all()
    assert names["04110"] == "Cell cycle" and names["04630"] == "JAK-STAT signaling pathway"


@needs_orgdb
def test_every_kegg_pathway_of_the_installed_database_has_a_name():
    path = find_orgdb("human")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        path_ids = {row[0] for row in con.execute("SELECT DISTINCT path_id FROM kegg")}
    assert sorted(path_ids - set(kegg_pathway_names().index)) == []
    sets = OrgDb.open("human").gene_sets("kegg")
    assert (sets["term_name"] != sets["term_id"]).all()
    named = sets.drop_duplicates("term_id").set_index("term_id")["term_name"]
    assert named["hsa04110"] == "Cell cycle" and named["hsa03010"] == "Ribosome"


@needs_orgdb
def test_a_kegg_id_without_a_shipped_name_is_named_by_its_id(monkeypatch):
    monkeypatch.setattr(
        isograph.annotation.orgdb, "kegg_pathway_names", lambda: pd.Series({"04110": "Cell cycle"})
    )
    named = OrgDb.open("human").gene_sets("kegg").drop_duplicates("term_id").set_index("term_id")["term_name"]
    assert named["hsa04110"] == "Cell cycle"
    assert named["hsa04630"] == "hsa04630"
