"""Eigengene patterns across a design factor: level means and the figure drawn from them."""

import numpy as np
import pandas as pd
import pytest

from isograph.report.patterns import eigengene_level_means, eigengene_patterns
from omicsrun import InputError


def _data():
    rng = np.random.default_rng(0)
    conditions = np.repeat(["naive", "IFNg", "SL1344", "IFNg_SL1344"], 6)
    samples = pd.DataFrame({"sample_id": [f"s{i:02d}" for i in range(24)], "condition": conditions})
    effect = {"naive": 0.0, "IFNg": 1.0, "SL1344": -1.0, "IFNg_SL1344": 2.0}
    eigengenes = pd.DataFrame(
        {
            "sample_id": samples["sample_id"][::-1].to_numpy(),  # another order than the sample table
            "M000": rng.standard_normal(24),
            "M001": [effect[c] for c in conditions[::-1]] + 0.1 * rng.standard_normal(24),
        }
    )
    return eigengenes, samples


def test_level_means_match_a_per_level_average_in_sample_table_order():
    eigengenes, samples = _data()
    means = eigengene_level_means(eigengenes, samples, "condition")
    assert list(means.columns) == ["naive", "IFNg", "SL1344", "IFNg_SL1344"]
    assert list(means.index) == ["M000", "M001"]
    merged = samples.merge(eigengenes, on="sample_id")
    for level in means.columns:
        rows = merged[merged["condition"] == level]
        assert means.loc["M001", level] == pytest.approx(rows["M001"].mean())
        assert means.loc["M000", level] == pytest.approx(rows["M000"].mean())
    np.testing.assert_allclose(means.loc["M001"], [0, 1, -1, 2], atol=0.1)


def test_figure_draws_one_panel_per_module_with_the_level_means():
    eigengenes, samples = _data()
    fig = eigengene_patterns(eigengenes, samples, "condition")
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["M000", "M001"]
    line = axes[1].get_lines()[-1]
    means = eigengene_level_means(eigengenes, samples, "condition")
    np.testing.assert_allclose(line.get_ydata(), means.loc["M001"])
    assert len(axes[1].collections[0].get_offsets()) == 24


def test_unknown_trait_or_sample_is_one_clear_error():
    eigengenes, samples = _data()
    with pytest.raises(InputError, match="no column 'donor'"):
        eigengene_level_means(eigengenes, samples, "donor")
    with pytest.raises(InputError, match="eigengene sample 's23' is not in the sample table"):
        eigengene_level_means(eigengenes, samples.iloc[:-1], "condition")
