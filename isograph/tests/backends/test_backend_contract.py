"""One contract every registered backend must meet (later backends join automatically)."""

import re

import numpy as np
import pytest

from isograph.backends import UNASSIGNED, BackendResult, available_backends, get_backend
from isograph.backends.base import apply_overrides
from isograph.features import build_features
from isograph.fixtures import make_fixture
from omicsrun import InputError


@pytest.fixture(scope="module")
def features():
    return build_features(make_fixture("core_v1", "standard", seed=0))


@pytest.mark.parametrize("name", available_backends())
def test_backend_contract(name, features):
    backend = get_backend(name)
    assert backend.name == name
    result = backend.fit(features, config=backend.config_class(), seed=0)
    assert isinstance(result, BackendResult)
    assert list(result.modules.columns[:2]) == ["gene_id", "module_id"]
    assert set(result.modules["gene_id"]) == set(features.gene_ids)
    assert result.modules["gene_id"].is_unique
    ids = result.modules["module_id"]
    named = ids[ids != UNASSIGNED]
    assert all(re.fullmatch(r"M\d{3}", m) for m in named.unique())
    sizes = named.value_counts()
    order = sorted(sizes.index)
    assert list(sizes.loc[order]) == sorted(sizes, reverse=True)  # M000 is the largest
    assert list(result.edges.columns) == ["gene_a", "gene_b", "weight"]
    assert set(result.edges["gene_a"]).union(result.edges["gene_b"]) <= set(features.gene_ids)
    again = backend.fit(features, config=backend.config_class(), seed=0)
    assert again.modules.equals(result.modules)
    np.testing.assert_array_equal(again.edges["weight"], result.edges["weight"])


@pytest.mark.parametrize("name", available_backends())
def test_backend_overrides_reject_unknown_keys(name):
    backend = get_backend(name)
    with pytest.raises(InputError, match=f"unknown override key '{name}.no_such_key'; valid keys"):
        apply_overrides(backend.config_class(), {f"{name}.no_such_key": "1"}, prefix=name)
