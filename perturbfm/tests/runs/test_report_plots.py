"""Report plots return Figures built from the numbers given; the demo writes its table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from omicsrun import InputError
from perturbfm.demo import run_demo, summary_markdown
from perturbfm.report import plots


def test_plots_draw_the_given_numbers():
    fig = plots.plot_per_perturbation_scores({"A": 0.5, "B": -0.2, "C": None}, metric="pcc_delta")
    assert isinstance(fig, Figure)
    widths = sorted(p.get_width() for p in fig.axes[0].patches)
    assert widths == pytest.approx([-0.2, 0.5])
    fig = plots.plot_calibration({"0.5": 0.4, "0.9": 0.8}, per_context={"c0": {"0.5": 0.5, "0.9": 0.9}})
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    np.testing.assert_allclose(lines["all test cells"].get_ydata(), [0.4, 0.8])
    fig = plots.plot_risk_coverage([0.5, 1.0], [0.1, 0.3], aurc=0.1)
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), [0.1, 0.3])
    fig = plots.plot_delta_scatter([("p | c", np.array([1.0, -1.0]), np.array([0.5, -0.5]))])
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), [[1.0, 0.5], [-1.0, -0.5]])
    fig = plots.plot_per_perturbation_scores(
        {"A+B": 0.5, "C+D": 0.1}, metric="pcc_delta_centroid", seen={"A+B": 2, "C+D": 0}
    )
    colors = {p.get_width(): p.get_facecolor()[:3] for p in fig.axes[0].patches}
    assert colors[0.5] == pytest.approx(to_rgb(plots.SEEN_COLORS["2"]))
    assert colors[0.1] == pytest.approx(to_rgb(plots.SEEN_COLORS["0"]))
    keys = {
        t.get_text(): h
        for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles, strict=True)
    }
    assert keys["2 singles seen"].get_facecolor()[:3] == pytest.approx(to_rgb(plots.SEEN_COLORS["2"]))
    fig = plots.plot_baseline_comparison(
        {"rmse": {"this run": 0.2, "control_only": 0.3}}, directions={"rmse": "lower"}
    )
    assert [p.get_height() for p in fig.axes[0].patches] == pytest.approx([0.2, 0.3])
    assert "lower" not in fig.axes[0].get_title() and "\u2193" in fig.axes[0].get_title()


def test_summary_markdown_rows():
    rows = [
        {
            "split": "s",
            "baseline": "b",
            "pcc_delta": 0.5,
            "rmse": 0.25,
            "rank_rmse": None,
            "edistance": 1.0,
            "coverage@0.9": 0.9,
        }
    ]
    text = summary_markdown(rows)
    assert "| s | b |  |  | 0.500 | 0.250 |  | 1.000 | 0.900 |" in text


@pytest.mark.slow
def test_demo_synthetic_only(tmp_path):
    out = tmp_path / "demo"
    summary = run_demo(
        out,
        baselines=["global_mean", "additive"],
        include_devel=False,
        synthetic_params={"n_obs": 400, "n_genes": 30, "n_perts": 8},
    )
    assert [r["baseline"] for r in summary["rows"]] == ["global_mean", "additive", "perturbfm-v2 (K=2)"]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["rows"] == summary["rows"]
    for row in summary["rows"]:
        metrics = json.loads((out / row["run_dir"] / "metrics.json").read_text())
        assert row["pcc_delta"] == metrics["scperturbench"]["global"]["pcc_delta"]
        assert row["coverage@0.9"] == metrics["uncertainty"]["coverage"]["0.9"]
    model_metrics = json.loads((out / summary["rows"][-1]["run_dir"] / "metrics.json").read_text())
    assert "conformal" in model_metrics["uncertainty"]
    with pytest.raises(InputError, match="already holds results"):
        run_demo(out, baselines=["global_mean"], include_devel=False)
    run_demo(
        out,
        overwrite=True,
        baselines=["global_mean"],
        include_devel=False,
        model_run=False,
        synthetic_params={"n_obs": 400, "n_genes": 30, "n_perts": 8},
    )
    assert len(json.loads((out / "summary.json").read_text())["rows"]) == 1
