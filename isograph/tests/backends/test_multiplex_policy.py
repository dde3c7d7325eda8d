"""Multiplex edge policy: split-half stability and the data-only choice of alpha_abundance."""

import numpy as np
import pytest

from isograph.backends.multiplex import calibrate_alpha_abundance, class_cutoffs, split_half_agreement
from isograph.fit import fit_bundle
from isograph.fixtures import make_fixture
from isograph.network.threshold import bonferroni_z


def test_split_half_agreement_closed_form():
    a = np.array([0] * 10 + [1] * 10)
    assert split_half_agreement(a, a) == pytest.approx(1.0)
    # Second module half-lost: Jaccard 1 and 0.5 both ways -> recovery = relevance = 0.75.
    b = np.array([0] * 10 + [1] * 5 + [-1] * 5)
    assert split_half_agreement(a, b) == pytest.approx(0.75)
    assert split_half_agreement(a, np.full(20, -1)) == 0.0


def test_calibration_picks_the_stable_value_and_breaks_ties_low():
    truth = np.repeat(np.arange(4), 10)

    def partition(alpha, rows):
        if alpha == 10.0:
            return truth
        rng = np.random.default_rng(int(rows.sum()) + int(alpha))  # differs between halves
        return rng.integers(0, 4, truth.size)

    best, table = calibrate_alpha_abundance([100.0, 1.0, 10.0], partition, 40, seed=0)
    assert best == 10.0
    assert [row["alpha_abundance"] for row in table] == [1.0, 10.0, 100.0]
    assert table[1]["stability"] == pytest.approx(1.0)
    best, _ = calibrate_alpha_abundance([3.0, 1.0], lambda alpha, rows: truth, 40, seed=0)
    assert best == 1.0


def test_class_cutoffs_follow_bonferroni_and_forbid_abundance_pairs():
    scale = np.array([[0.1, 0.2], [0.2, 0.3]])
    pairs = np.array([[100, 50], [50, 200]])
    z, cutoff = class_cutoffs(
        scale, pairs, alpha_switch=1.0, alpha_abundance=5.0, allow_abundance_abundance=False
    )
    assert z[0, 0] == pytest.approx(bonferroni_z(1.0, 100))
    assert cutoff[0, 1] == pytest.approx(0.2 * bonferroni_z(5.0, 50))
    assert np.isinf(cutoff[1, 1])


@pytest.mark.slow
def test_baseline_chooses_alpha_abundance_from_its_grid():
    bundle = make_fixture("multiplex_v1", "multiplex_standard", seed=0)
    result = fit_bundle(bundle, backend="baseline", overrides={"baseline.alpha_abundance_grid": "1,100"})
    table = result.diagnostics["alpha_abundance_calibration"]
    assert [row["alpha_abundance"] for row in table] == [1.0, 100.0]
    chosen = max(table, key=lambda row: (row["stability"], -row["alpha_abundance"]))["alpha_abundance"]
    # The calibrated fit equals a fit at the chosen value (truth is never read: features carry none).
    fixed = fit_bundle(bundle, backend="baseline", overrides={"baseline.alpha_abundance": str(chosen)})
    assert fixed.modules.equals(result.modules)
