"""The backend contract's machinery: registry hygiene, state save/load, raw counts, typed overrides."""

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pytest

from isograph.backends import base
from isograph.backends.base import (
    BackendResult,
    apply_overrides,
    check_backend_dependencies,
    load_backend_state,
    register,
    save_backend_state,
)
from isograph.features import build_features
from isograph.fit import fit_bundle, write_fit
from isograph.fit.core import raw_counts
from isograph.fixtures import make_fixture
from omicsrun import InputError


def test_duplicate_backend_name_is_refused(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))

    class First:
        pass

    class Second:
        pass

    register("dup_test")(First)
    register("dup_test")(First)  # re-registering the same class is harmless
    with pytest.raises(ValueError, match=r"'dup_test' is already registered by .*First"):
        register("dup_test")(Second)


def test_only_existing_backends_are_listed():
    names = base.available_backends()
    assert "baseline" in names
    for name in names:
        module = type(base.get_backend(name)).__module__
        assert (
            module == f"isograph.backends.{name}"
            or module.startswith(f"isograph.backends.{name}.")  # a backend package (vae)
            or name not in base._BUILTIN
        )


def test_missing_python_dependency_is_one_line():
    class NeedsPackage:
        name = "needs"
        requires: ClassVar[tuple[str, ...]] = ("no_such_module_for_isograph",)
        install_hint = "pip install 'isograph[needs]'"

    with pytest.raises(InputError, match=r"needs the Python package 'no_such_module_for_isograph'; install"):
        check_backend_dependencies(NeedsPackage())


def test_unavailable_builtin_says_what_to_install(monkeypatch):
    monkeypatch.setattr(
        base, "_UNAVAILABLE", {"vae_x": "backend 'vae_x' needs torch; install it with: pip install torch"}
    )
    with pytest.raises(InputError, match=r"^backend 'vae_x' needs torch; install"):
        base.get_backend("vae_x")
    assert "vae_x" not in base.available_backends()


@dataclass(frozen=True)
class _Config:
    count: int = 1
    level: float | None = None
    flag: bool = False
    mode: Literal["fixed", "cv"] = "cv"
    sizes: tuple[int, ...] = (1, 2)
    label: str = "x"


def test_overrides_parse_declared_types():
    config = apply_overrides(
        _Config(),
        {
            "t.count": "3",
            "t.level": "0.5",
            "t.flag": "yes",
            "t.mode": "fixed",
            "t.sizes": "4,5",
            "t.label": "y",
        },
        prefix="t",
    )
    assert config == _Config(count=3, level=0.5, flag=True, mode="fixed", sizes=(4, 5), label="y")
    assert apply_overrides(_Config(level=0.3), {"t.level": "none"}, prefix="t").level is None
    for key, raw, expected in [
        ("t.count", "1.5", "expected int"),
        ("t.level", "abc", "expected float or none"),
        ("t.level", "nan", "expected float or none"),
        ("t.flag", "maybe", "expected bool"),
        ("t.mode", "auto", "expected one of fixed/cv"),
        ("t.sizes", "a,b", "expected tuple"),
    ]:
        with pytest.raises(InputError, match=expected):
            apply_overrides(_Config(), {key: raw}, prefix="t")


def test_override_runs_range_checks():
    with pytest.raises(InputError, match=r"baseline\.min_module_size must be >= 2"):
        apply_overrides(
            base.get_backend("baseline").config_class(), {"baseline.min_module_size": "1"}, prefix="baseline"
        )


def test_state_round_trips_through_backend_folder(tmp_path):
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(rng.normal(size=(5, 2)), index=[f"s{i}" for i in range(5)], columns=["F00", "F01"])
    loadings = pd.DataFrame(
        rng.normal(size=(3, 2)), index=["a:switch", "b:switch", "c:switch"], columns=["F00", "F01"]
    )
    soft = pd.DataFrame([[0.9], [0.1], [0.5]], index=["a", "b", "c"], columns=["M000"])
    result = BackendResult(
        modules=pd.DataFrame({"gene_id": ["a", "b", "c"], "module_id": ["M000", "unassigned", "M000"]}),
        edges=pd.DataFrame({"gene_a": [], "gene_b": [], "weight": []}),
        sample_scores=scores,
        feature_loadings=loadings,
        soft_membership=soft,
        state={"components": rng.normal(size=(2, 3)), "k": 2, "note": "x"},
    )
    save_backend_state(result, tmp_path / "fit" / "backend", backend="latent")
    loaded = load_backend_state(tmp_path / "fit")
    assert loaded.backend == "latent" and loaded.format_version == 1
    pd.testing.assert_frame_equal(loaded.sample_scores, scores.rename_axis("sample_id"))
    pd.testing.assert_frame_equal(loaded.feature_loadings, loadings.rename_axis("feature_id"))
    pd.testing.assert_frame_equal(loaded.soft_membership, soft.rename_axis("gene_id"))
    np.testing.assert_array_equal(loaded.state["components"], result.state["components"])
    assert loaded.state["k"] == 2 and loaded.state["note"] == "x"
    with pytest.raises(InputError, match="expected a fitted backend"):
        load_backend_state(tmp_path)


def test_fit_folder_holds_backend_and_membership(tmp_path):
    bundle = make_fixture("core_v1", "standard", seed=0)
    result = fit_bundle(bundle)
    write_fit(result, tmp_path / "fit")
    assert (tmp_path / "fit" / "backend" / "backend.json").is_file()
    assert load_backend_state(tmp_path / "fit").backend == "baseline"
    membership = pd.read_parquet(tmp_path / "fit" / "membership.parquet")
    n_modules = result.eigengenes.shape[1]
    assert len(membership) == len(result.feature_scores) * n_modules


def test_raw_counts_follow_feature_sample_order():
    bundle = make_fixture("core_v1", "standard", seed=0)
    features = build_features(bundle)
    counts = raw_counts(bundle, features)
    assert counts.transcript_counts.shape == (bundle.n_transcripts, features.n_samples)
    np.testing.assert_array_equal(counts.sample_ids, features.sample_ids.astype(str))
    np.testing.assert_allclose(counts.library_size, np.asarray(bundle.transcript_counts).sum(axis=0))
