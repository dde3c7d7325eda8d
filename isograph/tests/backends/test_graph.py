"""The graph backend: kNN graph, Laplacian smoothing against a direct solve, user edge tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.sparse.csgraph import laplacian
from sklearn.neighbors import NearestNeighbors

from isograph.backends import get_backend
from isograph.backends.graph import (
    GraphConfig,
    edge_table_graph,
    knn_graph,
    laplacian_smooth,
    read_edge_table,
)
from isograph.features.build import FeatureSet
from omicsrun import InputError


def test_smoothing_solves_the_tikhonov_system():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 30))
    a = sparse.random(30, 30, density=0.15, random_state=1)
    a = (a + a.T).tolil()
    a.setdiag(0)
    a = a.tocsr()
    a.eliminate_zeros()
    y, info = laplacian_smooth(x, a, strength=2.0, tol=1e-12, max_iter=1000)
    lap = laplacian(a, normed=True).toarray()
    expected = np.linalg.solve(np.eye(30) + 2.0 * lap, x.T).T
    expected = (expected - expected.mean(axis=0)) / expected.std(axis=0)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert info["cg_converged"] and info["relative_change"] > 0


def test_knn_graph_matches_sklearn_neighbours_on_full_embedding():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 60))
    xc = x - x.mean(axis=0)  # features arrive centred
    graph = knn_graph(xc, n_neighbors=4, n_components=19)
    # with every component kept, cosine of the embeddings = cosine of the columns
    nn = NearestNeighbors(n_neighbors=5, metric="cosine").fit(xc.T)
    _, idx = nn.kneighbors(xc.T)
    for i in range(60):
        expected = {j for j in idx[i, 1:] if np.dot(xc[:, i], xc[:, j]) > 0}
        assert expected <= set(graph[i].indices)
    assert (graph != graph.T).nnz == 0


def _features(genes):
    return FeatureSet(
        matrix=np.zeros((3, len(genes)), dtype=np.float32),
        feature_ids=np.array([f"{g}:switch" for g in genes], dtype=object),
        feature_type=np.array(["switch"] * len(genes), dtype=object),
        gene_ids=np.array(genes, dtype=object),
        sample_ids=np.array(["a", "b", "c"], dtype=object),
    )


def test_user_edge_table(tmp_path):
    path = tmp_path / "edges.tsv"
    pd.DataFrame(
        {"gene_a": ["g1", "g2", "zz"], "gene_b": ["g2", "g3", "g1"], "weight": [1.0, 0.5, 2.0]}
    ).to_csv(path, sep="\t", index=False)
    graph = edge_table_graph(_features(["g1", "g2", "g3"]), read_edge_table(path))
    np.testing.assert_allclose(graph.toarray(), [[0, 1, 0], [1, 0, 0.5], [0, 0.5, 0]])
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"gene_a": ["g1"], "target": ["g2"]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"lacks columns \['gene_b', 'weight'\]"):
        read_edge_table(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_edge_table(tmp_path / "none.csv")
    with pytest.raises(InputError, match=r"graph\.edges_path must be a table path"):
        GraphConfig(graph="edges").validate()


@pytest.mark.slow
def test_graph_fit_reports_diagnostics():
    from isograph.features import build_features
    from isograph.fixtures import make_fixture
    from isograph.scoring import score_fit

    bundle = make_fixture("core_v1", "standard", seed=0)
    result = get_backend("graph").fit(build_features(bundle), config=GraphConfig(n_factors=12), seed=0)
    d = result.diagnostics
    assert 0 < d["graph_density"] < 0.05 and d["cg_converged"]
    assert d["neighbour_correlation_after"] > d["neighbour_correlation_before"]
    assert score_fit(bundle, result.modules, seed=0)["f_rr"] >= 0.75
