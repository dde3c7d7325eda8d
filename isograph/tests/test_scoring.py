"""Module-recovery scores: hand-computed examples, perfect and random predictions."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from math import comb

import numpy as np
import pandas as pd
import pytest

from isograph.backends.base import UNASSIGNED
from isograph.fixtures import make_fixture
from isograph.scoring import METRICS, jaccard_matrix, role_recall, score_fit, score_modules
from omicsrun import InputError

GENES = [f"g{i}" for i in range(1, 18)]
TRUTH = pd.DataFrame({"gene_id": GENES[:10], "module_id": ["A"] * 5 + ["B"] * 5})
FOUND = pd.DataFrame(
    {
        # X = g1-g4, g6 (+ gZ outside the universe); g5 unassigned; Y = g7-g12; Q = g13-g17
        "gene_id": [*GENES, "gZ"],
        "module_id": ["X"] * 4 + [UNASSIGNED, "X"] + ["Y"] * 6 + ["Q"] * 5 + ["X"],
    }
)


def _ari_by_pairs(a: list[str], b: list[str]) -> float:
    """Adjusted Rand index from its pair-counting definition (Hubert & Arabie)."""
    n = len(a)
    both = sum(1 for i, j in combinations(range(n), 2) if a[i] == a[j] and b[i] == b[j])
    sum_a = sum(comb(a.count(x), 2) for x in set(a))
    sum_b = sum(comb(b.count(x), 2) for x in set(b))
    expected = sum_a * sum_b / comb(n, 2)
    return (both - expected) / ((sum_a + sum_b) / 2 - expected)


def test_hand_computed_example():
    scores = score_modules(FOUND, TRUTH, universe=GENES)
    # J(X,A) = 4/6, J(X,B) = 1/9, J(Y,B) = 4/7, J(Q,.) = 0
    recovery = (Fraction(4, 6) + Fraction(4, 7)) / 2
    relevance = (Fraction(4, 6) + Fraction(4, 7) + 0) / 3
    f_rr = 2 * recovery * relevance / (recovery + relevance)
    assert scores["recovery"] == pytest.approx(float(recovery))
    assert scores["relevance"] == pytest.approx(float(relevance))
    assert scores["f_rr"] == pytest.approx(float(f_rr))
    assert scores["f_rr"] == pytest.approx(2028 / 4095)
    truth_labels = ["A"] * 5 + ["B"] * 5 + ["bg"] * 7
    found_labels = ["X"] * 4 + ["U", "X"] + ["Y"] * 6 + ["Q"] * 5
    assert scores["ari"] == pytest.approx(_ari_by_pairs(truth_labels, found_labels))
    assigned = [i for i in range(17) if truth_labels[i] != "bg" and found_labels[i] != "U"]
    assert scores["ari_assigned"] == pytest.approx(
        _ari_by_pairs([truth_labels[i] for i in assigned], [found_labels[i] for i in assigned])
    )
    assert scores["unassigned_fraction"] == pytest.approx(1 / 17)
    assert scores["n_modules"] == 3
    assert scores["n_scored_modules"] == 3  # X (5 universe genes), Y (6), Q (5)
    assert scores["n_true_modules"] == 2
    assert scores["n_genes"] == 17
    assert 0 < scores["nmi"] < 1


def test_jaccard_matrix_and_size_filter():
    found = np.array(["X"] * 4 + ["U", "X"] + ["Y"] * 4 + ["bg"] * 0)
    truth = np.array(["A"] * 5 + ["B"] * 5)
    jac = jaccard_matrix(np.where(found == "U", UNASSIGNED, found), truth)
    # Y has 4 genes (< 5) and is dropped; X vs A = 4/6, X vs B = 1/9
    assert list(jac.index) == ["X"]
    np.testing.assert_allclose(jac.loc["X", ["A", "B"]].to_numpy(), [4 / 6, 1 / 9])
    with pytest.raises(InputError, match="equal length"):
        jaccard_matrix(found[:3], truth)


def test_permuted_truth_ratio_matches_recomputation():
    scores = score_modules(FOUND, TRUTH, universe=GENES, seed=7)
    labels = (
        pd.Series(TRUTH["module_id"].to_numpy(), index=TRUTH["gene_id"])
        .reindex(GENES)
        .fillna("__background__")
    )
    permuted = np.random.default_rng(7).permutation(labels.to_numpy(dtype=str))
    permuted_truth = pd.DataFrame({"gene_id": GENES, "module_id": permuted})
    permuted_truth = permuted_truth[permuted_truth["module_id"] != "__background__"]
    again = score_modules(FOUND, permuted_truth, universe=GENES)
    for name in ("recovery", "relevance", "f_rr", "ari", "nmi"):
        assert scores[f"{name}_permuted"] == pytest.approx(again[name])
        if name == "ari":
            assert "ari_over_permuted" not in scores  # chance-corrected already
        elif again[name] != 0:
            assert scores[f"{name}_over_permuted"] == pytest.approx(scores[name] / again[name])


def test_no_found_modules_scores_zero():
    found = pd.DataFrame({"gene_id": GENES, "module_id": UNASSIGNED})
    scores = score_modules(found, TRUTH, universe=GENES)
    assert scores["recovery"] == scores["relevance"] == scores["f_rr"] == 0.0
    assert scores["unassigned_fraction"] == 1.0
    assert scores["n_modules"] == 0
    assert np.isnan(scores["ari_assigned"])


def test_perfect_and_random_predictions_on_a_fixture():
    bundle = make_fixture("core_v1", "standard", seed=0)
    truth = bundle.truth["truth_modules"]
    perfect = score_fit(bundle, truth)
    for name in ("recovery", "relevance", "f_rr", "ari", "nmi", "ari_assigned", "nmi_assigned"):
        assert perfect[name] == pytest.approx(1.0), name
    assert perfect["f_rr_over_permuted"] > 10
    rng = np.random.default_rng(0)
    shuffled = truth.assign(gene_id=rng.permutation(bundle.genes["gene_id"].to_numpy())[: len(truth)])
    random = score_fit(bundle, shuffled)
    assert random["f_rr"] < 0.1
    assert abs(random["ari"]) < 0.03
    assert abs(random["ari_assigned"]) < 0.1


def test_role_recall_by_hand():
    truth_roles = pd.DataFrame(
        {
            "gene_id": ["a", "b", "c", "d", "e", "f"],
            "module_id": "M",
            "role": ["coupled", "coupled", "switch_only", "discordant", "abundance_only", "abundance_only"],
        }
    )
    fitted = pd.DataFrame(
        {
            "module_id": "M000",
            "gene_id": ["a", "b", "c", "e", "zz"],  # d and f are missing: misses
            "module_role": ["coupled", "switch_only", "switch_only", "abundance_only", "coupled"],
        }
    )
    out = role_recall(fitted, truth_roles)
    assert out["role_recall"] == {
        "switch_only": 1.0,
        "abundance_only": 0.5,
        "coupled": 0.5,
        "discordant": 0.0,
    }
    assert out["role_support"] == {"switch_only": 1, "abundance_only": 2, "coupled": 2, "discordant": 1}
    assert role_recall(None, truth_roles)["role_recall"]["coupled"] == 0.0
    with pytest.raises(InputError, match="module_role"):
        role_recall(fitted.drop(columns="module_role"), truth_roles)
    with pytest.raises(InputError, match="truth roles table has no column 'role'"):
        role_recall(fitted, truth_roles.drop(columns="role"))


def test_bad_inputs_and_registry():
    with pytest.raises(InputError, match="no column 'module_id'"):
        score_modules(FOUND.drop(columns="module_id"), TRUTH, universe=GENES)
    with pytest.raises(InputError, match="truth modules table has no column 'gene_id'"):
        score_modules(FOUND, TRUTH.drop(columns="gene_id"), universe=GENES)
    with pytest.raises(InputError, match="outside the gene universe"):
        score_modules(FOUND, TRUTH, universe=GENES[:5])
    assert METRICS["unassigned_fraction"].higher_is_better is False
    assert METRICS["f_rr"].higher_is_better is True
