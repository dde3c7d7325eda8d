import json

import numpy as np
import pandas as pd
import pytest

from omicsrun import InputError
from perturbfm.data import (
    PerturbDataset,
    dataset_hash,
    list_graphs,
    load_dataset,
    load_graph,
    make_synthetic,
    save_dataset,
    synthetic_graph,
)


@pytest.fixture(scope="module")
def small():
    return make_synthetic(n_obs=300, n_genes=30, n_contexts=3, n_perts=6, seed=3)


def _same(a: PerturbDataset, b: PerturbDataset) -> None:
    np.testing.assert_array_equal(np.asarray(a.X_pert), np.asarray(b.X_pert))
    np.testing.assert_array_equal(np.asarray(a.X_control), np.asarray(b.X_control))
    np.testing.assert_array_equal(np.asarray(a.delta), np.asarray(b.delta))
    pd.testing.assert_frame_equal(a.obs, b.obs, check_dtype=False)
    assert a.var == b.var
    assert a.metadata == b.metadata


def _write_v1(ds: PerturbDataset, path, memmap: bool = False) -> None:
    """A format-version-1 artifact as PerturbFM wrote it before version 2 (three dense copies)."""
    from perturbfm.data.artifact import _obs_to_json

    path.mkdir()
    arrays = {
        "X_control": np.asarray(ds.X_control, dtype=np.float32),
        "X_pert": np.asarray(ds.X_pert, dtype=np.float32),
        "delta": np.asarray(ds.delta, dtype=np.float32),
        "obs_idx": ds.obs["obs_idx"].to_numpy(dtype=np.int64),
    }
    if memmap:
        for k, v in arrays.items():
            np.save(path / f"{k}.npy", v)
    else:
        np.savez(path / "data.npz", **arrays)
    meta = {
        "format": "perturbfm-dataset",
        "format_version": 1,
        "storage": "npy" if memmap else "npz",
        "n_obs": ds.n_obs,
        "n_genes": ds.n_genes,
        "obs": _obs_to_json(ds.obs),
        "var": list(ds.var),
        "metadata": dict(ds.metadata),
    }
    (path / "meta.json").write_text(json.dumps(meta))


def test_round_trip_every_storage_hashes_alike(small, tmp_path):
    save_dataset(small, tmp_path / "a", graphs={"g": synthetic_graph(n_genes=30, seed=3)})
    save_dataset(small, tmp_path / "b", storage="csr")
    save_dataset(small, tmp_path / "d", storage="dense")
    a, b, d = (load_dataset(tmp_path / k) for k in "abd")
    for back in (a, b, d):
        _same(small, back)
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["format"] == "perturbfm-dataset" and meta["format_version"] == 2
    assert meta["storage"] == "dense"  # gaussian synthetic data: every value non-zero
    assert isinstance(a.cells, np.memmap) and not a.is_sparse
    assert b.is_sparse and json.loads((tmp_path / "b" / "meta.json").read_text())["storage"] == "csr"
    # one copy of the cells: no dense X_control / X_pert / delta files
    assert not list((tmp_path / "a").glob("X_*.npy")) and not (tmp_path / "a" / "delta.npy").exists()
    # the same content hashes alike whatever the storage, and re-saving keeps the hash
    assert dataset_hash(tmp_path / "a") == dataset_hash(tmp_path / "b") == dataset_hash(tmp_path / "d")
    save_dataset(a, tmp_path / "c", storage="csr")
    assert dataset_hash(tmp_path / "c") == dataset_hash(tmp_path / "a")
    assert list_graphs(tmp_path / "a") == ["g"]
    np.testing.assert_array_equal(
        load_graph(tmp_path / "a" / "graphs" / "g.npz", var=small.var), synthetic_graph(n_genes=30, seed=3)
    )
    with pytest.raises(InputError, match="do not match"):
        load_graph(tmp_path / "a" / "graphs" / "g.npz", var=small.var[::-1])


@pytest.mark.parametrize("memmap", [False, True])
def test_version_1_artifacts_load_and_keep_their_hash(small, tmp_path, memmap):
    # The stored version-2 hash is computed from CSR/dense cells and the pairing; the
    # version-1 hash is recomputed from the three dense arrays. They must agree, so splits
    # frozen against version-1 data stay valid.
    _write_v1(small, tmp_path / "v1", memmap=memmap)
    old = load_dataset(tmp_path / "v1")
    _same(small, old)
    save_dataset(small, tmp_path / "v2", storage="csr")
    assert dataset_hash(tmp_path / "v1") == dataset_hash(tmp_path / "v2")


def test_edited_artifact_is_refused_and_content_changes_the_hash(small, tmp_path):
    save_dataset(small, tmp_path / "a", storage="dense")
    arr = np.load(tmp_path / "a" / "cells.npy", mmap_mode="r+")
    arr[5, 3] += 1.0
    arr.flush()
    del arr
    with pytest.raises(InputError, match=r"cells\.npy changed after the artifact was written"):
        dataset_hash(tmp_path / "a")
    save_dataset(small, tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "meta.json").read_text())
    meta["obs"]["data"]["context_id"][0] = "C2" if meta["obs"]["data"]["context_id"][0] != "C2" else "C1"
    (tmp_path / "b" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="obs, var or metadata changed"):
        dataset_hash(tmp_path / "b")
    # A different value, saved properly, gives a different hash.
    x = np.asarray(small.X_pert).copy()
    x[5, 3] += 1.0
    other = PerturbDataset(
        X_control=small.X_control, X_pert=x, obs=small.obs, var=small.var, metadata=small.metadata
    )
    save_dataset(other, tmp_path / "c")
    save_dataset(small, tmp_path / "d")
    assert dataset_hash(tmp_path / "c") != dataset_hash(tmp_path / "d")


def test_covariates_and_types_survive(tmp_path):
    ds = make_synthetic(n_obs=120, n_genes=12, n_contexts=2, n_perts=4, seed=0)
    obs = ds.obs.copy()
    obs["dose"] = np.linspace(0, 1, len(obs))
    obs.loc[3, "dose"] = np.nan
    obs["time"] = np.arange(len(obs)) % 3
    obs["donor"] = pd.Categorical(np.where(np.arange(len(obs)) % 2, "d1", "d2"))
    ds2 = PerturbDataset(X_control=ds.X_control, X_pert=ds.X_pert, obs=obs, var=ds.var, metadata={"x": 1})
    save_dataset(ds2, tmp_path / "a")
    back = load_dataset(tmp_path / "a").obs
    np.testing.assert_array_equal(back["dose"].to_numpy(), obs["dose"].to_numpy())
    assert back["time"].dtype == np.int64
    assert back["donor"].tolist() == obs["donor"].astype(str).tolist()
    assert back["pert_genes"].tolist() == obs["pert_genes"].tolist()


def test_refuses_existing_and_bad_folders(small, tmp_path):
    save_dataset(small, tmp_path / "a")
    with pytest.raises(InputError, match="already holds results"):
        save_dataset(small, tmp_path / "a")
    save_dataset(small, tmp_path / "a", overwrite=True)
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no meta\.json"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "a" / "meta.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="format 'other'"):
        load_dataset(tmp_path / "a")


def test_dataset_validation_messages(small):
    obs = small.obs.copy()
    ctrl_row = int(np.flatnonzero(obs["is_control"].to_numpy())[0])
    obs.loc[ctrl_row, "is_control"] = False
    with pytest.raises(InputError, match="is_control must be true exactly where"):
        PerturbDataset(X_control=small.X_control, X_pert=small.X_pert, obs=obs, var=small.var)
    obs = small.obs.copy()
    row = int(np.flatnonzero(~obs["is_control"].to_numpy())[0])
    obs.at[row, "pert_genes"] = "G0001"
    with pytest.raises(InputError, match="lists of gene ids"):
        PerturbDataset(X_control=small.X_control, X_pert=small.X_pert, obs=obs, var=small.var)
    obs = small.obs.copy()
    obs["is_control"] = obs["is_control"].astype(str)
    with pytest.raises(InputError, match="must be boolean"):
        PerturbDataset(X_control=small.X_control, X_pert=small.X_pert, obs=obs, var=small.var)


def test_non_finite_values_are_refused(small):
    for name in ("X_pert", "X_control"):
        arrays = {"X_pert": small.X_pert.copy(), "X_control": small.X_control.copy()}
        arrays[name][7, 2] = np.nan
        with pytest.raises(InputError, match=f"{name} holds NaN or infinite values"):
            PerturbDataset(**arrays, obs=small.obs, var=small.var)
    delta = small.delta.copy()
    delta[0, 0] = np.inf
    with pytest.raises(InputError, match="delta holds NaN or infinite values"):
        PerturbDataset(
            X_control=small.X_control, X_pert=small.X_pert, delta=delta, obs=small.obs, var=small.var
        )


def test_given_delta_must_equal_the_difference(small, tmp_path, monkeypatch):
    # Rounding is accepted: X_pert built as X_control + delta in float32 (models.fixtures), and
    # float64 inputs whose delta is the float64 difference.
    d = small.delta.copy()
    PerturbDataset(
        X_control=small.X_control, X_pert=small.X_control + d, delta=d, obs=small.obs, var=small.var
    )
    x64 = small.X_pert.astype(np.float64) * np.pi
    c64 = small.X_control.astype(np.float64) * np.e
    ds64 = PerturbDataset(X_control=c64, X_pert=x64, delta=x64 - c64, obs=small.obs, var=small.var)
    save_dataset(ds64, tmp_path / "f64")  # stored as float32: still loads
    load_dataset(tmp_path / "f64")
    # A different matrix is refused, and the message names the first bad value.
    d[9, 4] += 0.01
    with pytest.raises(InputError, match=r"delta must equal X_pert - X_control; row 9, gene 4 .*1 such"):
        PerturbDataset(X_control=small.X_control, X_pert=small.X_pert, delta=d, obs=small.obs, var=small.var)
    # Found in a later row block too (blocks of a few rows here).
    monkeypatch.setattr("perturbfm.data.dataset._BLOCK_VALUES", 3 * small.n_genes)
    d = np.asarray(small.delta).copy()
    d[250, 1] -= 1.0
    with pytest.raises(InputError, match=r"row 250, gene 1 .*rows 249-251"):
        PerturbDataset(X_control=small.X_control, X_pert=small.X_pert, delta=d, obs=small.obs, var=small.var)
