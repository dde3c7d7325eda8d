import pandas as pd
import pytest

from isograph.annotation import OrgDb, attach_gene_names, find_orgdb, gene_names_from_source, with_gene_names
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
