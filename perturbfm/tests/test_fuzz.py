"""Property-based fuzzing of PerturbFM's readers: every input is accepted or refused with InputError.

Predictions files (random keys, dtypes, shapes and values; random bytes), dataset metadata
(random JSON in every field), split files and .h5ad imports (random bytes; random labels,
contexts and values). Any exception other than :class:`omicsrun.InputError` fails.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omicsrun import InputError
from perturbfm.data.artifact import load_dataset, save_dataset
from perturbfm.data.h5ad import import_h5ad
from perturbfm.data.synthetic import make_synthetic
from perturbfm.eval import validate_predictions
from perturbfm.runs import load_predictions

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
    derandomize=True,  # the same examples on every run; widen locally with max_examples
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _clean(call) -> None:
    # Acceptance or InputError are both clean outcomes; anything else propagates and fails.
    with contextlib.suppress(InputError):
        call()


arrays = st.one_of(
    st.lists(st.sampled_from([0.0, 1.0, -1.0, np.nan, np.inf, 0.5]), min_size=0, max_size=12).map(
        lambda v: np.asarray(v, dtype=np.float64)
    ),
    st.lists(st.integers(-3, 10), min_size=0, max_size=12).map(np.asarray),
    st.lists(st.booleans(), max_size=6).map(np.asarray),
    st.lists(st.text(max_size=3), max_size=4).map(lambda v: np.asarray(v, dtype=str)),
    st.just(np.zeros((3, 4))),
    st.just(np.arange(3, dtype=np.float32) + 0.5),
)


@FUZZ
@given(
    content=st.dictionaries(
        st.sampled_from(["mean", "var", "idx", "val_mean", "val_var", "val_idx", "other"]),
        arrays,
        max_size=6,
    ),
    reshape=st.booleans(),
)
def test_predictions_fuzzed(content, reshape):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.npz"
        if reshape:
            content = {k: (v.reshape(-1, 1) if v.ndim == 1 else v) for k, v in content.items()}
        np.savez(path, **content)

        def read_and_validate():
            preds = load_predictions(path)
            validate_predictions(preds["mean"], preds.get("var"), preds["idx"], np.arange(3), 4)

        _clean(read_and_validate)


@FUZZ
@given(payload=st.binary(max_size=200))
def test_predictions_random_bytes(payload):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.npz"
        path.write_bytes(payload)
        _clean(lambda: load_predictions(path))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz_pfm") / "data"
    save_dataset(make_synthetic(n_obs=120, n_genes=10, n_contexts=2, n_perts=3, seed=0), path)
    return path


@FUZZ
@given(data=st.data())
def test_dataset_metadata_fuzzed(artifact, data):
    meta = json.loads((artifact / "meta.json").read_text())
    key = data.draw(st.sampled_from(sorted(meta)))
    if data.draw(st.booleans()):
        meta.pop(key)
    else:
        meta[key] = data.draw(json_values)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "d"
        shutil.copytree(artifact, copy)
        (copy / "meta.json").write_text(json.dumps(meta))
        _clean(lambda: load_dataset(copy))


@FUZZ
@given(
    name=st.sampled_from(["meta.json", "data.npz"]),
    payload=st.binary(max_size=200),
)
def test_dataset_files_replaced_by_random_bytes(artifact, name, payload):
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "d"
        shutil.copytree(artifact, copy)
        (copy / name).write_bytes(payload)
        _clean(lambda: load_dataset(copy))


@FUZZ
@given(payload=st.binary(max_size=300))
def test_h5ad_random_bytes(payload):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.h5ad"
        path.write_bytes(payload)
        _clean(lambda: import_h5ad(path, pert_key="p", context_key="c", control_label="ctrl"))


labels = st.sampled_from(["ctrl", "ctrl", "A", "B", "A+B", "Ctrl", "", "ctrl+A", "A+", " B"])


@FUZZ
@given(
    pert=st.lists(labels, min_size=6, max_size=6),
    ctx=st.lists(st.sampled_from(["k1", "k2"]), min_size=6, max_size=6),
    values=st.lists(st.sampled_from([0.0, 1.0, 3.0, np.nan, np.inf, -2.0]), min_size=12, max_size=12),
    seed=st.integers(0, 5),
)
def test_h5ad_random_labels_and_values(pert, ctx, values, seed):
    obs = pd.DataFrame({"p": pert, "c": ctx}, index=[f"c{i}" for i in range(6)])
    x = np.asarray(values, dtype=np.float32).reshape(6, 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.h5ad"
        ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=["g0", "g1"])).write_h5ad(path)
        _clean(lambda: import_h5ad(path, pert_key="p", context_key="c", control_label="ctrl", seed=seed))


@FUZZ
@given(data=st.data())
def test_split_file_fuzzed(artifact, data):
    from perturbfm.data.artifact import dataset_hash
    from perturbfm.splits import SplitStore, create_split

    ds = load_dataset(artifact)
    with tempfile.TemporaryDirectory() as tmp:
        store = SplitStore(root=Path(tmp))
        split = create_split(ds, {"name": "context_ood", "holdout_contexts": ["C1"]}, seed=0,
                             data_hash=dataset_hash(artifact))  # fmt: skip
        store.save(split)
        (path,) = Path(tmp).glob("*.json")
        record = json.loads(path.read_text())
        key = data.draw(st.sampled_from(sorted(record)))
        record[key] = data.draw(json_values)
        path.write_text(json.dumps(record))
        _clean(lambda: store.load(split.frozen_hash))
