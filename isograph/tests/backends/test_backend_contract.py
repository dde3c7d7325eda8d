"""One contract every registered backend must meet (later backends join automatically)."""

import dataclasses
import re
import typing

import numpy as np
import pandas as pd
import pytest

from isograph.backends import UNASSIGNED, BackendResult, available_backends, get_backend
from isograph.backends.base import apply_overrides
from isograph.bundle import write_bundle
from isograph.cli import main
from isograph.features import build_features
from isograph.fixtures import make_fixture
from omicsrun import InputError

# Backends with an external dependency carry its marker (R for wgcna).
_MARKS = {"wgcna": [pytest.mark.r, pytest.mark.slow], "graph": [pytest.mark.slow]}
BACKENDS = [pytest.param(name, marks=_MARKS.get(name, [])) for name in available_backends()]


@pytest.fixture(scope="module")
def features():
    return build_features(make_fixture("core_v1", "standard", seed=0))


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundles") / "core"
    write_bundle(make_fixture("core_v1", "standard", seed=0), path)
    return path


def _check_optional(frame, index_name, index_values):
    if frame is None:
        return
    assert isinstance(frame, pd.DataFrame)
    assert frame.index.is_unique
    assert set(frame.index.astype(str)) <= set(np.asarray(index_values).astype(str)), index_name
    assert all(np.issubdtype(t, np.floating) for t in frame.dtypes)
    assert np.isfinite(frame.to_numpy()).all()


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_contract(name, features):
    backend = get_backend(name)
    assert backend.name == name
    result = backend.fit(features, config=backend.config_class(), seed=0)
    assert isinstance(result, BackendResult)
    assert list(result.modules.columns[:2]) == ["gene_id", "module_id"]
    assert result.modules["gene_id"].dtype == object and result.modules["module_id"].dtype == object
    assert set(result.modules["gene_id"]) == set(features.gene_ids)  # every gene ...
    assert result.modules["gene_id"].is_unique  # ... exactly once
    ids = result.modules["module_id"]
    named = ids[ids != UNASSIGNED]
    assert named.nunique() >= 1  # core_v1 has planted modules; a backend must find some
    assert all(re.fullmatch(r"M\d{3}", m) for m in named.unique())
    sizes = named.value_counts()
    order = sorted(sizes.index)
    assert order == [f"M{k:03d}" for k in range(len(order))]  # no gaps
    assert list(sizes.loc[order]) == sorted(sizes, reverse=True)  # M000 is the largest
    assert list(result.edges.columns) == ["gene_a", "gene_b", "weight"]
    assert np.issubdtype(result.edges["weight"].dtype, np.floating)
    assert set(result.edges["gene_a"]).union(result.edges["gene_b"]) <= set(features.gene_ids)
    _check_optional(result.sample_scores, "sample_id", features.sample_ids)
    _check_optional(result.feature_loadings, "feature_id", features.feature_ids)
    _check_optional(result.soft_membership, "gene_id", features.gene_ids)
    if result.soft_membership is not None:
        assert set(result.soft_membership.columns) == set(named.unique())
    json_safe = __import__("json").dumps(result.calibration)
    assert isinstance(json_safe, str)
    # identical output for a fixed seed
    again = backend.fit(features, config=backend.config_class(), seed=0)
    assert again.modules.equals(result.modules)
    np.testing.assert_array_equal(again.edges["weight"], result.edges["weight"])
    for key in ("sample_scores", "feature_loadings", "soft_membership"):
        first, second = getattr(result, key), getattr(again, key)
        assert (first is None) == (second is None)
        if first is not None:
            pd.testing.assert_frame_equal(first, second)


def _ill_typed_key(name):
    config = get_backend(name).config_class()
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        if hints[f.name] is not str:
            return f"{name}.{f.name}"
    raise AssertionError(name)


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_overrides_reject_unknown_keys(name):
    backend = get_backend(name)
    with pytest.raises(InputError, match=f"unknown override key '{name}.no_such_key'; valid keys"):
        apply_overrides(backend.config_class(), {f"{name}.no_such_key": "1"}, prefix=name)
    key = _ill_typed_key(name)
    with pytest.raises(InputError, match=f"override {re.escape(key)}='abc': expected .*found 'abc'"):
        apply_overrides(backend.config_class(), {key: "abc"}, prefix=name)


def _fails(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("name", BACKENDS)
def test_cli_rejects_bad_overrides_in_one_line(name, bundle_dir, tmp_path, capsys):
    out = tmp_path / "fit"
    base = ["fit", "--bundle", str(bundle_dir), "--out", str(out), "--backend", name, "--"]
    assert "unknown override key" in _fails(capsys, [*base, f"{name}.no_such_key=1"])
    key = _ill_typed_key(name)
    assert f"override {key}='abc'" in _fails(capsys, [*base, f"{key}=abc"])
    assert not out.exists()


def test_cli_shrinkage_abc_is_one_line(bundle_dir, tmp_path, capsys):
    # The case the issue names: float | None field given text used to traceback.
    err = _fails(
        capsys,
        ["fit", "--bundle", str(bundle_dir), "--out", str(tmp_path / "f"), "--", "baseline.shrinkage=abc"],
    )
    assert "expected float or none, found 'abc'" in err


@pytest.mark.parametrize("name", BACKENDS)
def test_no_partial_folder_when_backend_raises(name, bundle_dir, tmp_path, monkeypatch):
    backend_class = type(get_backend(name))

    def broken(self, *args, **kwargs):
        raise RuntimeError("backend failed half-way")

    monkeypatch.setattr(backend_class, "fit", broken)
    out = tmp_path / "fit"
    with pytest.raises(RuntimeError, match="half-way"):
        main(["fit", "--bundle", str(bundle_dir), "--out", str(out), "--backend", name])
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind either
