"""Graph builders: GO/KEGG co-annotation (a tiny org.*.eg.db of known content), co-expression, edges."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from omicsrun import InputError
from perturbfm.data.graph_build import (
    ORGDB_PATHS,
    graph_from_coexpression,
    graph_from_edges,
    graph_from_orgdb,
)


def _tiny_orgdb(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE gene_info (_id INTEGER, gene_name TEXT, symbol TEXT);
        CREATE TABLE ensembl (_id INTEGER, ensembl_id TEXT);
        CREATE TABLE go_bp (_id INTEGER, go_id TEXT, evidence TEXT);
        CREATE TABLE kegg (_id INTEGER, path_id TEXT);
        INSERT INTO gene_info VALUES (1, 'a', 'A'), (2, 'b', 'B'), (3, 'c', 'C'), (4, 'd', 'D');
        INSERT INTO ensembl VALUES (4, 'ENSG04');
        INSERT INTO go_bp VALUES (1, 'GO:1', 'IDA'), (2, 'GO:1', 'IEA'), (1, 'GO:2', 'IDA'),
                                 (2, 'GO:2', 'IDA'), (3, 'GO:2', 'IDA'), (1, 'GO:2', 'TAS');
        INSERT INTO kegg VALUES (3, '00010'), (4, '00010');
        """
    )
    con.commit()
    con.close()
    return path


def test_orgdb_graph_is_jaccard_of_term_sets(tmp_path):
    db = _tiny_orgdb(tmp_path / "org.sqlite")
    # D matched by Ensembl id (version stripped); Z unknown
    var = ["A", "B", "C", "ENSG04.7", "Z"]
    adjacency, info = graph_from_orgdb(var, path=db, top_k=10)
    # terms: A {GO1, GO2}, B {GO1, GO2}, C {GO2, K}, D {K}
    expected = np.zeros((5, 5))
    expected[0, 1] = 1.0  # A-B share both terms
    expected[0, 2] = expected[1, 2] = 1 / 3  # {GO2} / {GO1, GO2, K}
    expected[2, 3] = 1 / 2  # {K} / {GO2, K}
    expected = expected + expected.T
    np.testing.assert_allclose(adjacency, expected, rtol=1e-6)
    assert info["n_matched"] == 4
    # max_term_size drops GO:2 (3 genes)
    small, _ = graph_from_orgdb(var, path=db, top_k=10, max_term_size=2)
    assert small[0, 2] == 0 and small[0, 1] == pytest.approx(1.0)


def test_missing_orgdb_says_which_package(tmp_path):
    with pytest.raises(InputError, match=r"r-bioc-org\.mm\.eg\.db"):
        graph_from_orgdb(["A"], species="mouse", path=tmp_path / "missing.sqlite")


def test_real_human_orgdb_when_installed():
    if not Path(ORGDB_PATHS["human"]).is_file():
        pytest.skip("Debian r-bioc-org.hs.eg.db not installed (tools/install-system-deps.sh installs it)")
    adjacency, info = graph_from_orgdb(["TP53", "MDM2", "CDKN1A", "NOT_A_GENE"], top_k=5)
    assert info["n_matched"] == 3
    assert adjacency[0, 1] > 0  # TP53 and MDM2 share GO-BP and KEGG terms
    assert (adjacency[3] == 0).all()


def test_coexpression_graph_against_corrcoef():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 1))
    x = np.hstack([base + 0.1 * rng.normal(size=(50, 1)), -base, rng.normal(size=(50, 2))])
    adjacency, _ = graph_from_coexpression(x, top_k=1, min_abs_corr=0.5)
    corr = np.abs(np.corrcoef(x.T))
    assert adjacency[0, 1] == pytest.approx(corr[0, 1], rel=1e-5)
    assert adjacency[2, 3] == 0  # independent genes stay apart
    with pytest.raises(InputError, match="at least 3 training control cells"):
        graph_from_coexpression(x[:2])


def test_edge_table_drops_unknown_genes(tmp_path):
    table = tmp_path / "edges.csv"
    table.write_text("gene_a,gene_b,weight\nA,B,2\nB,C,1\nA,X,5\n")
    adjacency, info = graph_from_edges(["A", "B", "C"], table)
    assert info == {"n_edges_in_table": 3, "n_edges_kept": 2}
    assert adjacency[0, 1] == adjacency[1, 0] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("source,target\nA,B\n")
    with pytest.raises(InputError, match="no column 'gene_a'"):
        graph_from_edges(["A", "B"], bad)
