"""The published finding on real data: on held-out Norman K562 combinations, the additive
baseline beats the global mean on PCC-delta (Ahlmann-Eltze et al. 2025)."""

from __future__ import annotations

import numpy as np
import pytest

from omicsrun.testing import require_shared
from perturbfm.data.h5ad import import_h5ad
from perturbfm.eval import evaluate_predictions
from perturbfm.models import get_model
from perturbfm.splits import create_split


@pytest.mark.shared_data
def test_additive_beats_global_mean_on_devel_combos():
    path = require_shared("perturbench_devel/devel.h5ad")
    ds = import_h5ad(path, pert_key="perturbation", context_key="cell_type", control_label="control")
    split = create_split(ds, {"name": "combo", "context": "k562"}, seed=0, data_hash="devel")
    test = split.test_idx[~ds.is_control[split.test_idx]]
    control = split.test_idx[ds.is_control[split.test_idx]]
    scores = {}
    for name in ("global_mean", "additive", "linear"):
        model = get_model(name).fit(ds, split.train_idx)
        mean, var = model.predict(ds, test)
        out = evaluate_predictions(
            ds,
            test_idx=test,
            control_idx=control,
            mean=mean,
            var=var,
            metric_genes=split.metric_genes,
            pert_labels=split.labels,
        )
        per = out["scperturbench"]["per_perturbation"]
        both_seen = [p for p, k in split.labels.items() if k == 2]
        n = ds.obs["pert_id"].iloc[test].value_counts()
        label2 = out["scperturbench"]["per_label"]["2"]["pcc_delta"]
        # one context: per_label is the cell-weighted mean of the per-perturbation values
        assert label2 == pytest.approx(
            np.average([per[p]["pcc_delta"] for p in both_seen], weights=n[both_seen])
        )
        scores[name] = (out["scperturbench"]["global"]["pcc_delta"], label2)
        if name == "linear":
            # only 1 of the perturbed genes is measured: P comes from the training deltas
            assert model.embedding_ == "training"
    assert scores["additive"][0] > scores["global_mean"][0]
    assert scores["additive"][1] > scores["global_mean"][1] + 0.1
    assert scores["linear"][1] > scores["global_mean"][1] + 0.1
