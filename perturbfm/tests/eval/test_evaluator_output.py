"""Evaluator: output layout, aggregation, registry, bad input, speed."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from omicsrun import InputError
from perturbfm.eval import evaluate_predictions, metric_registry, validate_predictions
from perturbfm.eval.testing import make_eval_case


def _run(c, **kw):
    rng = np.random.default_rng(0)
    mean = kw.pop("mean", c.true_delta * 0.8 + rng.normal(0, 0.3, c.true_delta.shape))
    var = kw.pop("var", np.full_like(mean, 0.1))
    return evaluate_predictions(
        c.ds, test_idx=c.test_idx, control_idx=c.control_idx, mean=mean, var=var, **kw
    )


def test_layout_registry_and_json():
    c = make_eval_case()
    out = _run(c)
    assert set(out) == {
        "scperturbench",
        "perturbench",
        "celleval_de",
        "uncertainty",
        "diagnostics",
        "flags",
        "ceiling",
        "warnings",
        "registry",
    }
    reg = metric_registry()
    for panel in ("scperturbench", "perturbench"):
        assert set(out[panel]) == {"global", "per_perturbation", "per_context"}
        assert set(out[panel]["per_perturbation"]) == {"G0", "G1", "G2", "G3"}
        assert set(out[panel]["per_context"]) == {"ctx0", "ctx1"}
        for name in out[panel]["global"]:
            assert reg[name]["panel"] == panel
            assert reg[name]["direction"] in {"lower", "higher"}
    assert "scperturb" in reg["edistance"]["compares"]
    assert "test-split control cells of the same context" in reg["pcc_delta"]["compares"]
    assert out["registry"] == reg
    json.dumps(out, allow_nan=False)


def test_global_is_cell_weighted_mean_of_groups():
    c = make_eval_case(n_perts=3)
    # drop half the cells of one group so that weights differ
    obs = c.ds.obs
    drop = np.flatnonzero(((obs["pert_id"] == "G0") & (obs["context_id"] == "ctx0")).to_numpy())[:6]
    keep = ~np.isin(c.test_idx, drop)
    c.test_idx, c.true_delta = c.test_idx[keep], c.true_delta[keep]
    out = _run(c)
    sb = out["scperturbench"]
    n_ctx = {"ctx0": 6 + 2 * 12, "ctx1": 3 * 12}
    ref = sum(sb["per_context"][k]["mse"] * n for k, n in n_ctx.items()) / sum(n_ctx.values())
    assert sb["global"]["mse"] == pytest.approx(ref)
    one = evaluate_predictions(
        c.ds,
        test_idx=c.test_idx[:6],
        control_idx=c.control_idx,
        mean=np.zeros((6, 30)),
        var=np.ones((6, 30)),
    )
    assert set(one["scperturbench"]["per_perturbation"]) == {"G0"}


def test_metric_genes_restrict_every_panel():
    c = make_eval_case()
    genes = [f"G{i}" for i in range(10)]
    by_name = _run(c, metric_genes=genes)
    by_pos = _run(c, metric_genes=list(range(10)))
    assert by_name["perturbench"]["global"] == by_pos["perturbench"]["global"]
    assert by_name["perturbench"]["global"] != _run(c)["perturbench"]["global"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m, v, i: (m[:, :-1], v, i), r"mean must have shape"),
        (lambda m, v, i: (m, v[:-1], i), r"var must have shape"),
        (lambda m, v, i: (np.where(np.eye(*m.shape, dtype=bool), np.nan, m), v, i), "NaN"),
        (lambda m, v, i: (m, -v, i), "negative"),
        (lambda m, v, i: (m, v, i[::-1]), "does not match"),
        (lambda m, v, i: (m, v, i[:-1]), "cover"),
    ],
)
def test_validate_predictions_rejects(change, match):
    c = make_eval_case()
    mean, var = np.zeros_like(c.true_delta), np.ones_like(c.true_delta)
    m, v, i = change(mean, var, c.test_idx.copy())
    with pytest.raises(InputError, match=match):
        validate_predictions(m, v, i, c.test_idx, c.ds.n_genes)


def test_evaluator_rejects_bad_input():
    c = make_eval_case()
    ctx0 = c.control_idx[c.ds.obs["context_id"].to_numpy()[c.control_idx] == "ctx0"]
    with pytest.raises(InputError, match="no test-split control cells for context"):
        evaluate_predictions(
            c.ds,
            test_idx=c.test_idx,
            control_idx=ctx0,
            mean=c.true_delta,
            var=np.ones_like(c.true_delta),
        )
    with pytest.raises(InputError, match="control rows only"):
        evaluate_predictions(
            c.ds,
            test_idx=c.test_idx,
            control_idx=c.test_idx[:3],
            mean=c.true_delta,
            var=np.ones_like(c.true_delta),
        )
    with pytest.raises(InputError, match="not in the dataset"):
        _run(c, metric_genes=["nope"])
    with pytest.raises(InputError, match="ood_labels"):
        _run(c, ood_labels=np.zeros(3, dtype=bool))
    with pytest.raises(InputError, match="no perturbed"):
        evaluate_predictions(
            c.ds,
            test_idx=c.control_idx,
            control_idx=c.control_idx,
            mean=np.zeros((c.control_idx.size, 30)),
            var=np.ones((c.control_idx.size, 30)),
        )


def test_collapsed_model_is_exposed_by_rank_and_diagnostics():
    c = make_eval_case(n_perts=6)
    collapsed = np.tile(c.true_delta.mean(axis=0), (c.test_idx.size, 1))
    out = _run(c, mean=collapsed)
    assert out["diagnostics"]["global"]["delta_spread_ratio"] < 0.2
    assert out["perturbench"]["global"]["rank_rmse"] > 0.2
    good = _run(c, mean=c.true_delta)
    assert good["diagnostics"]["global"]["delta_spread_ratio"] > 0.8
    assert good["perturbench"]["global"]["rank_rmse"] == 0.0


@pytest.mark.slow
def test_panel_on_devel_sized_data_takes_seconds():
    # devel.h5ad: 5,961 cells x 500 genes; here 4 contexts x 25 perturbations = 100 groups.
    c = make_eval_case(n_genes=500, n_contexts=4, n_perts=25, n_per_group=55, n_ctrl=120)
    rng = np.random.default_rng(0)
    mean = c.true_delta * 0.5 + rng.normal(0, 0.3, c.true_delta.shape)
    start = time.perf_counter()
    out = evaluate_predictions(
        c.ds,
        test_idx=c.test_idx,
        control_idx=c.control_idx,
        mean=mean,
        var=np.full_like(mean, 0.2),
    )
    elapsed = time.perf_counter() - start
    assert out["diagnostics"]["global"]["n_groups"] == 100
    assert elapsed < 15.0


def test_every_selectable_metric_equals_the_full_evaluation():
    # `eval --metrics` computes each panel only for the names asked for (the DEG ranking and
    # the panels' other metrics are skipped); each value must still equal the full run's.
    import itertools

    from perturbfm.eval.evaluator import check_metric_selection
    from perturbfm.eval.registry import metric_names
    from perturbfm.eval.testing import make_eval_case

    c = make_eval_case(n_contexts=2, n_perts=6, seed=3)
    mean = (c.true_delta * 0.5 + np.random.default_rng(4).normal(0, 0.3, c.true_delta.shape)).astype(
        np.float32
    )
    kw = {"test_idx": c.test_idx, "control_idx": c.control_idx, "mean": mean, "var": None}
    full = evaluate_predictions(c.ds, **kw)
    names = metric_names("scperturbench") + metric_names("perturbench")
    selectable = [m for m in names if _selectable(check_metric_selection, m)]
    assert {"mse_all", "pcc_delta_centroid_all", "mse", "pds_l1"} <= set(selectable)
    choices = (
        [[m] for m in selectable]
        + [selectable]
        + [list(p) for p in itertools.combinations(selectable[:4], 2)]
    )
    for chosen in choices:
        sel = evaluate_predictions(c.ds, **kw, metrics=chosen)
        for panel in ("scperturbench", "perturbench"):
            got = sel[panel]["per_perturbation"] if sel[panel] else {}
            for p, row in got.items():
                assert set(row) <= set(chosen)
                for k, v in row.items():
                    ref = full[panel]["per_perturbation"][p][k]
                    assert (v is None and ref is None) or v == pytest.approx(
                        ref, rel=1e-12, abs=1e-15, nan_ok=True
                    ), (
                        chosen,
                        p,
                        k,
                    )


def _selectable(check, name):
    try:
        check([name])
    except InputError:
        return False
    return True
