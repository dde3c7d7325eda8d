import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from omicsrun import InputError
from omicsrun.testing import require_shared
from perturbfm.data import import_h5ad


def _write_h5ad(path, *, drop_ctrl_context=None, seed=0):
    rng = np.random.default_rng(seed)
    n, g = 240, 15
    labels = np.array(["ctrl", "A", "B", "A+B", "C"])[rng.integers(0, 5, n)]
    contexts = np.array(["k1", "k2"])[rng.integers(0, 2, n)]
    batches = np.array(["b1", "b2"])[rng.integers(0, 2, n)]
    # no control in (k2, b2): those cells must fall back to k2 controls
    labels[(contexts == "k2") & (batches == "b2") & (labels == "ctrl")] = "C"
    if drop_ctrl_context is not None:
        labels[(contexts == drop_ctrl_context) & (labels == "ctrl")] = "A"
    x = sp.random(n, g, density=0.3, format="csr", random_state=seed, dtype=np.float64) * 5
    obs = pd.DataFrame(
        {
            "perturbation": pd.Categorical(labels),
            "cell_type": contexts,
            "batch": batches,
            "dose": rng.random(n),
        },
        index=[f"cell{i}" for i in range(n)],
    )
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(g)]))
    adata.write_h5ad(path)
    return adata


def _check_pairing(ds, adata, *, control="ctrl", batch_key=None):
    dense = adata.X.toarray().astype(np.float32)
    np.testing.assert_array_equal(ds.X_pert, dense)
    pair = ds.obs["control_obs_idx"].to_numpy()
    np.testing.assert_array_equal(ds.X_control, dense[pair])
    np.testing.assert_allclose(ds.delta, dense - dense[pair], atol=1e-6)
    src = adata.obs
    assert (src["perturbation"].to_numpy()[pair] == control).all()
    np.testing.assert_array_equal(src["cell_type"].to_numpy()[pair], src["cell_type"].to_numpy())
    ctrl = ds.obs["is_control"].to_numpy()
    assert (pair[ctrl] != np.flatnonzero(ctrl)).all()  # controls pair with another control
    return pair


def test_import_pairs_within_context(tmp_path):
    adata = _write_h5ad(tmp_path / "x.h5ad")
    ds = import_h5ad(
        tmp_path / "x.h5ad", pert_key="perturbation", context_key="cell_type", control_label="ctrl"
    )
    _check_pairing(ds, adata)
    obs = ds.obs
    assert all(tuple(g) == ("A", "B") for g in obs.loc[obs["pert_id"] == "A+B", "pert_genes"])
    assert all(tuple(g) == ("C",) for g in obs.loc[obs["pert_id"] == "C", "pert_genes"])
    assert obs.loc[obs["is_control"], "pert_id"].eq("control").all()
    assert obs.loc[obs["is_control"], "pert_genes"].map(len).eq(0).all()
    assert ds.metadata["import"]["control_label"] == "ctrl"
    assert "uniformly" in ds.metadata["pairing"]["rule"]
    # seeded: same seed same pairs, another seed other pairs
    again = import_h5ad(
        tmp_path / "x.h5ad", pert_key="perturbation", context_key="cell_type", control_label="ctrl"
    )
    other = import_h5ad(
        tmp_path / "x.h5ad", pert_key="perturbation", context_key="cell_type", control_label="ctrl", seed=5
    )
    np.testing.assert_array_equal(again.obs["control_obs_idx"], obs["control_obs_idx"])
    assert not np.array_equal(other.obs["control_obs_idx"], obs["control_obs_idx"])


def test_pairing_is_uniform_over_group_controls():
    # The draw behind import_h5ad: each control of a group is equally likely (chi-square),
    # and a control is never paired with itself.
    from scipy.stats import chisquare

    from perturbfm.data.h5ad import _pair_controls, _pair_within_groups

    rng = np.random.default_rng(0)
    ctrl_rows = np.arange(10, 40)
    ctrl_group = np.repeat([0, 1, 2], [5, 10, 15])
    cells = np.repeat([0, 1, 2], 20000)
    pair = _pair_within_groups(rng, cells, ctrl_rows, ctrl_group)
    for g in range(3):
        members = ctrl_rows[ctrl_group == g]
        drawn = pair[cells == g]
        assert np.isin(drawn, members).all()
        counts = np.array([(drawn == m).sum() for m in members])
        assert chisquare(counts).pvalue > 1e-3
    paired, n_self = _pair_controls(rng, ctrl_rows, ctrl_group)
    assert n_self == 0 and (paired != ctrl_rows).all()
    np.testing.assert_array_equal(ctrl_group[paired - 10], ctrl_group)


def test_batch_pairing_and_fallback(tmp_path):
    adata = _write_h5ad(tmp_path / "x.h5ad")
    ds = import_h5ad(
        tmp_path / "x.h5ad",
        pert_key="perturbation",
        context_key="cell_type",
        control_label="ctrl",
        batch_key="batch",
        covariate_keys=["dose"],
    )
    pair = _check_pairing(ds, adata)
    src = adata.obs
    batch, ctx = src["batch"].to_numpy(), src["cell_type"].to_numpy()
    fallback = (ctx == "k2") & (batch == "b2")
    assert (batch[pair][~fallback] == batch[~fallback]).all()
    assert ds.metadata["pairing"]["n_batch_fallback"] == int(fallback.sum()) > 0
    np.testing.assert_allclose(ds.obs["dose"].to_numpy(), src["dose"].to_numpy())
    assert (ds.obs["batch_id"].to_numpy() == batch).all()


def test_bad_input(tmp_path):
    _write_h5ad(tmp_path / "x.h5ad")
    with pytest.raises(InputError, match=r"no column 'pert'.*obs columns are \['perturbation', 'cell_type'"):
        import_h5ad(tmp_path / "x.h5ad", pert_key="pert", context_key="cell_type", control_label="ctrl")
    with pytest.raises(InputError, match="no column 'donor'"):
        import_h5ad(
            tmp_path / "x.h5ad",
            pert_key="perturbation",
            context_key="cell_type",
            control_label="ctrl",
            batch_key="donor",
        )
    with pytest.raises(InputError, match="no cell has perturbation == 'control'"):
        import_h5ad(
            tmp_path / "x.h5ad", pert_key="perturbation", context_key="cell_type", control_label="control"
        )
    _write_h5ad(tmp_path / "y.h5ad", drop_ctrl_context="k2")
    with pytest.raises(InputError, match=r"context\(s\) \['k2'\].*no control cells"):
        import_h5ad(
            tmp_path / "y.h5ad", pert_key="perturbation", context_key="cell_type", control_label="ctrl"
        )
    with pytest.raises(InputError, match="does not exist"):
        import_h5ad(
            tmp_path / "z.h5ad", pert_key="perturbation", context_key="cell_type", control_label="ctrl"
        )


@pytest.mark.shared_data
def test_devel_h5ad():
    path = require_shared("perturbench_devel/devel.h5ad")
    start = time.perf_counter()
    ds = import_h5ad(path, pert_key="perturbation", context_key="cell_type", control_label="control")
    assert time.perf_counter() - start < 30
    adata = ad.read_h5ad(path)
    assert (ds.n_obs, ds.n_genes) == (5961, 500)
    _check_pairing(ds, adata, control="control")
    obs = ds.obs
    assert all(tuple(g) == ("KLF1", "MAP2K6") for g in obs.loc[obs["pert_id"] == "KLF1+MAP2K6", "pert_genes"])
    assert sorted(obs["context_id"].unique()) == ["A172", "T98G", "U87MG", "k562"]
    assert obs.groupby("context_id")["is_control"].sum().eq(100).all()
    combos = obs.loc[obs["pert_genes"].map(len) == 2, "pert_id"].unique()
    assert len(combos) == 15


def test_layer_is_read_and_more_bad_input(tmp_path):
    adata = _write_h5ad(tmp_path / "x.h5ad")
    adata.layers["counts"] = np.asarray(adata.X.toarray() * 2 + 1)  # dense layer
    adata.write_h5ad(tmp_path / "l.h5ad")
    keys = {"pert_key": "perturbation", "context_key": "cell_type", "control_label": "ctrl"}
    ds = import_h5ad(tmp_path / "l.h5ad", layer="counts", **keys)
    np.testing.assert_array_equal(ds.X_pert, adata.layers["counts"].astype(np.float32))
    assert ds.metadata["source"]["layer"] == "counts"
    with pytest.raises(InputError, match=r"no layer 'raw'; layers are \['counts'\]"):
        import_h5ad(tmp_path / "l.h5ad", layer="raw", **keys)
    with pytest.raises(InputError, match=r"no column 'donor' \(from covariate_keys\)"):
        import_h5ad(tmp_path / "x.h5ad", covariate_keys=["dose", "donor"], **keys)
    (tmp_path / "bad.h5ad").write_bytes(b"not an hdf5 file")
    with pytest.raises(InputError, match=r"cannot read .*bad\.h5ad as an AnnData h5ad file"):
        import_h5ad(tmp_path / "bad.h5ad", **keys)
    adata.obs["cell_type"] = adata.obs["cell_type"].where(np.arange(adata.n_obs) != 3)
    adata.write_h5ad(tmp_path / "na.h5ad")
    with pytest.raises(InputError, match=r"obs\['perturbation'\] or obs\['cell_type'\] has missing values"):
        import_h5ad(tmp_path / "na.h5ad", **keys)
