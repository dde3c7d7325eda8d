"""One copy of the cells + the pairing: row views, blockwise moments and storage kinds agree
with plain numpy/pandas on the dense matrices, and a sparse import never goes dense."""

import mmap
import tracemalloc

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from omicsrun import InputError
from perturbfm.data import PerturbDataset, dataset_hash, import_h5ad, load_dataset, save_dataset
from perturbfm.eval import evaluate_predictions


def _sparse_case(seed: int = 0, n_cells: int = 400, n_genes: int = 25):
    """CSR cells, each row observing one stored cell and paired with a control cell."""
    rng = np.random.default_rng(seed)
    dense = sp.random(n_cells, n_genes, density=0.15, random_state=seed, dtype=np.float32).toarray()
    dense *= 4
    is_ctrl = rng.random(n_cells) < 0.2
    perts = np.where(is_ctrl, "control", np.array(["A", "B", "C", "D"])[rng.integers(0, 4, n_cells)])
    ctx = np.array(["k1", "k2"])[rng.integers(0, 2, n_cells)]
    ctrl_rows = np.flatnonzero(is_ctrl)
    pair = ctrl_rows[rng.integers(0, ctrl_rows.size, n_cells)]
    obs = pd.DataFrame(
        {
            "pert_id": perts,
            "context_id": ctx,
            "batch_id": "b",
            "is_control": is_ctrl,
            "pert_genes": [[] if p == "control" else [p] for p in perts],
        }
    )
    ds = PerturbDataset(
        cells=sp.csr_matrix(dense),
        pert_row=np.arange(n_cells),
        ctrl_row=pair,
        obs=obs,
        var=[f"g{i}" for i in range(n_genes)],
    )
    return ds, dense, pair


@pytest.fixture(scope="module")
def case():
    return _sparse_case()


def test_row_views_index_like_numpy(case):
    ds, dense, pair = case
    assert ds.is_sparse and ds.n_cells == ds.n_obs  # no second copy for the controls
    ref = {"pert": dense, "control": dense[pair], "delta": dense - dense[pair]}
    views = {"pert": ds.X_pert, "control": ds.X_control, "delta": ds.delta}
    rows = np.array([5, 0, 399, 5, 17])
    mask = np.arange(ds.n_obs) % 3 == 0
    for which, view in views.items():
        r = ref[which]
        assert view.shape == r.shape
        np.testing.assert_array_equal(view[rows], r[rows])
        np.testing.assert_array_equal(view[10:20], r[10:20])
        np.testing.assert_array_equal(view[mask], r[mask])
        np.testing.assert_array_equal(view[rows, 3], r[rows, 3])
        np.testing.assert_array_equal(view[7], r[7])
        np.testing.assert_array_equal(np.asarray(view), r)
        assert float(view.mean()) == pytest.approx(float(r.mean()), rel=1e-6)
        np.testing.assert_array_equal(ds.rows(rows, which, genes=[2, 4]), r[rows][:, [2, 4]])
        seen = np.vstack([b for _, _, b in ds.iter_rows(rows, which, block_rows=2)])
        np.testing.assert_array_equal(seen, r[rows])
    np.testing.assert_array_equal(ds.rows(rows, "control", sparse=True).toarray(), dense[pair][rows])
    with pytest.raises(InputError, match="delta rows are dense"):
        ds.rows(rows, "delta", sparse=True)


@pytest.mark.parametrize("storage", ["csr", "dense"])
def test_group_moments_match_pandas(case, storage, tmp_path, monkeypatch):
    ds, dense, pair = case
    if storage == "dense":
        save_dataset(ds, tmp_path / "d", storage="dense")
        ds = load_dataset(tmp_path / "d")
        assert isinstance(ds.cells, np.memmap)
    monkeypatch.setattr("perturbfm.data.dataset._BLOCK_VALUES", 7 * ds.n_genes)  # many blocks
    idx = np.flatnonzero(~ds.is_control)
    obs = ds.obs.iloc[idx]
    codes, names = pd.factorize(obs["pert_id"].to_numpy() + "|" + obs["context_id"].to_numpy())
    genes = np.array([0, 3, 7, 24])
    rng = np.random.default_rng(1)
    add = rng.normal(size=(idx.size + 5, ds.n_genes))
    add_rows = rng.permutation(idx.size + 5)[: idx.size]
    ref = {
        "pert": dense[idx],
        "control": dense[pair][idx],
        "delta": (dense - dense[pair])[idx],
    }
    for which, values in ref.items():
        for extra in (None, add):
            v = values.astype(np.float64) + (0 if extra is None else add[add_rows])
            frame = pd.DataFrame(v[:, genes]).groupby(codes)
            kwargs = {} if extra is None else {"add": add, "add_rows": add_rows}
            mean, var, counts = ds.group_moments(idx, codes, len(names), which, genes=genes, **kwargs)
            # delta: float32 differences (dense) vs float64 sums of p and c (CSR) -> float32 rounding
            np.testing.assert_allclose(mean, frame.mean().to_numpy(), rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(var, frame.var(ddof=1).to_numpy(), rtol=1e-5, atol=1e-7)
            np.testing.assert_array_equal(counts, frame.size().to_numpy())
            # Means only (another code path when ``add`` is given: its rows summed in their order).
            mean_only, nan_var, _ = ds.group_moments(
                idx, codes, len(names), which, genes=genes, with_var=False, **kwargs
            )
            np.testing.assert_allclose(mean_only, frame.mean().to_numpy(), rtol=1e-6, atol=1e-7)
            assert np.isnan(nan_var).all()
    # Several rows sharing one row of ``add`` (e.g. one prediction per group), means only.
    shared = rng.integers(0, 4, size=idx.size)
    v = ref["control"].astype(np.float64) + add[shared]
    mean_only, _, _ = ds.group_moments(
        idx, codes, len(names), "control", genes=genes, add=add, add_rows=shared, with_var=False
    )
    np.testing.assert_allclose(
        mean_only, pd.DataFrame(v[:, genes]).groupby(codes).mean().to_numpy(), atol=1e-7
    )
    keys, means, _ = ds.group_means_by(idx, ds.obs["pert_id"].to_numpy()[idx], "delta")
    frame = pd.DataFrame(ref["delta"].astype(np.float64)).groupby(ds.obs["pert_id"].to_numpy()[idx])
    assert list(keys) == list(frame.mean().index)
    np.testing.assert_allclose(means, frame.mean().to_numpy(), atol=1e-7)


@pytest.mark.parametrize("ratio", [0, 10**9], ids=["sparse-product", "bincount"])
def test_group_moments_of_csr_rows_by_either_route(case, tmp_path, monkeypatch, ratio):
    ds, dense, pair = case
    save_dataset(ds, tmp_path / "s", storage="csr")
    ds = load_dataset(tmp_path / "s")
    monkeypatch.setattr("perturbfm.data.dataset._BINCOUNT_RATIO", ratio)
    monkeypatch.setattr("perturbfm.data.dataset._BLOCK_VALUES", 5 * ds.n_genes)
    idx = np.arange(ds.n_obs)
    codes = pd.factorize(ds.obs["context_id"].to_numpy() + ds.obs["pert_id"].to_numpy())[0]
    for which, values in (("pert", dense), ("control", dense[pair])):
        frame = pd.DataFrame(values.astype(np.float64)).groupby(codes)
        mean, var, _ = ds.group_moments(idx, codes, codes.max() + 1, which)
        np.testing.assert_allclose(mean, frame.mean().to_numpy(), atol=1e-7)
        np.testing.assert_allclose(var, frame.var(ddof=1).to_numpy(), atol=1e-6)


def test_subset_shares_the_cells(case):
    ds, dense, pair = case
    sub = ds.subset(np.array([3, 1, 2]))
    assert sub.cells is ds.cells
    np.testing.assert_array_equal(np.asarray(sub.delta), (dense - dense[pair])[[3, 1, 2]])
    assert sub.obs["pert_id"].tolist() == ds.obs["pert_id"].iloc[[3, 1, 2]].tolist()


def test_csr_and_dense_storage_evaluate_alike(case, tmp_path):
    ds, _, _ = case
    save_dataset(ds, tmp_path / "s", storage="csr")
    save_dataset(ds, tmp_path / "d", storage="dense")
    sparse, dense = load_dataset(tmp_path / "s"), load_dataset(tmp_path / "d")
    for arr in (sparse.cells.data, sparse.cells.indices):  # memory-mapped CSR, not read whole
        base = arr
        while base is not None and not isinstance(base, mmap.mmap):
            base = getattr(base, "base", None)
        assert isinstance(base, mmap.mmap)
    assert dataset_hash(tmp_path / "s") == dataset_hash(tmp_path / "d")
    ctx = ds.obs["context_id"].to_numpy()
    test = np.flatnonzero(~ds.is_control & (ctx == "k2"))
    ctrl = np.flatnonzero(ds.is_control & (ctx == "k2"))
    rng = np.random.default_rng(2)
    mean = np.asarray(ds.delta[test]) * 0.5 + rng.normal(0, 0.2, (test.size, ds.n_genes))
    var = np.full_like(mean, 0.3)
    out = [
        evaluate_predictions(d, test_idx=test, control_idx=ctrl, mean=mean, var=var) for d in (sparse, dense)
    ]
    for panel in ("scperturbench", "perturbench"):
        for key, value in out[0][panel]["global"].items():
            other = out[1][panel]["global"][key]
            if value is None:
                assert other is None, key
            else:
                assert other == pytest.approx(value, rel=1e-7, abs=1e-9), key
    # the per-cell pass, DE and ceiling read CSR rows sparse: the same numbers as dense rows
    for key in ("nll", "mse", "mean_var"):
        assert out[0]["uncertainty"][key] == pytest.approx(out[1]["uncertainty"][key], rel=1e-6), key
    assert out[0]["uncertainty"]["coverage"] == pytest.approx(out[1]["uncertainty"]["coverage"], abs=1e-9)
    neg = [o["flags"]["negative_predicted_expression"]["n"] for o in out]
    assert neg[0] == neg[1] > 0
    for key, value in out[0]["celleval_de"]["global"].items():
        assert out[1]["celleval_de"]["global"][key] == pytest.approx(value, abs=1e-9), key
    for key, value in out[0]["ceiling"].items():
        assert out[1]["ceiling"][key] == pytest.approx(value, rel=1e-7), key


def test_construction_errors(case):
    ds, _, _ = case
    with pytest.raises(InputError, match="pert_row must index the 400 stored cells"):
        PerturbDataset(cells=ds.cells, pert_row=ds.pert_row + 1, ctrl_row=ds.ctrl_row, obs=ds.obs, var=ds.var)
    with pytest.raises(InputError, match="either cells"):
        PerturbDataset(X_control=np.zeros((2, 2)), cells=ds.cells, obs=ds.obs, var=ds.var)
    bad = ds.cells.copy()
    bad.data[0] = np.nan
    with pytest.raises(InputError, match="cells holds NaN"):
        PerturbDataset(cells=bad, pert_row=ds.pert_row, ctrl_row=ds.ctrl_row, obs=ds.obs, var=ds.var)


def test_sparse_import_streams_without_a_dense_matrix(tmp_path, monkeypatch):
    # Blocks of 100k values (400 kB dense), so the only way to stay far below one dense copy
    # is to never build one: import, save and the content hash all work by row blocks.
    monkeypatch.setattr("perturbfm.data.dataset._BLOCK_VALUES", 100_000)
    monkeypatch.setattr("perturbfm.data.h5ad._BLOCK_VALUES", 100_000)
    n, g = 3000, 2000
    rng = np.random.default_rng(0)
    x = sp.random(n, g, density=0.02, format="csr", random_state=0, dtype=np.float32)
    labels = np.where(rng.random(n) < 0.2, "ctrl", np.array(["A", "B"])[rng.integers(0, 2, n)])
    obs = pd.DataFrame({"p": pd.Categorical(labels), "c": "k"}, index=[f"c{i}" for i in range(n)])
    var = pd.DataFrame(index=[f"g{i}" for i in range(g)])
    ad.AnnData(X=x, obs=obs, var=var).write_h5ad(tmp_path / "x.h5ad")
    tracemalloc.start()
    ds = import_h5ad(tmp_path / "x.h5ad", pert_key="p", context_key="c", control_label="ctrl")
    save_dataset(ds, tmp_path / "art")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dense_bytes = n * g * 4  # 24 MB: one dense float32 copy of the matrix
    assert peak < dense_bytes / 4, peak
    assert ds.is_sparse and ds.n_cells == n
    np.testing.assert_array_equal(np.asarray(ds.X_pert), x.toarray())
    np.testing.assert_array_equal(np.asarray(ds.X_control), x.toarray()[ds.obs["control_obs_idx"].to_numpy()])
    back = load_dataset(tmp_path / "art")
    assert back.is_sparse and back.cells.nnz == x.nnz
