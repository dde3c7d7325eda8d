"""Property-based fuzzing of IsoGraph's readers: every input is accepted or refused with InputError.

Bundle manifests (random JSON in every field, random bytes), the files a manifest names,
count tables (random cells, headers and separators) and .h5ad files (random bytes, random
obs labels and values). Any exception other than :class:`omicsrun.InputError` fails.
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

from isograph.bundle import read_bundle, write_bundle
from isograph.io import import_count_table, import_h5ad
from omicsrun import InputError

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
tokens = st.sampled_from(
    ["0", "1", "3.5", "-1", "nan", "inf", "-inf", "", "abc", "1e400", "tA1.1", "gA", " "]
)


def _clean(call) -> None:
    # Acceptance or InputError are both clean outcomes; anything else propagates and fails.
    with contextlib.suppress(InputError):
        call()


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_bundle")
    samples = ["s1", "s2", "s3", "s4"]
    pd.DataFrame(
        [[10, 20, 30, 40], [5, 6, 7, 8], [9, 9, 9, 9], [1, 2, 3, 4]],
        index=pd.Index(["tA1", "tA2", "tB1", "tB2"], name="transcript_id"),
        columns=samples,
    ).to_csv(root / "counts.tsv", sep="\t")
    (root / "tx2gene.tsv").write_text("transcript_id\tgene_id\ntA1\tgA\ntA2\tgA\ntB1\tgB\ntB2\tgB\n")
    pd.DataFrame({"sample_id": samples, "Dx": [0.0, 1.0, 0.0, 1.0]}).to_csv(root / "samples.csv", index=False)
    bundle = import_count_table(
        root / "counts.tsv", root / "tx2gene.tsv", root / "samples.csv", min_count=0, min_samples=0
    )
    write_bundle(bundle, root / "bundle")
    return root


def _paths(manifest: dict, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(manifest, dict):
        for key, value in manifest.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(manifest, list):
        for i, value in enumerate(manifest):
            out += _paths(value, (*prefix, i))
    return out


@FUZZ
@given(data=st.data())
def test_bundle_manifest_fields_fuzzed(tiny_bundle, data):
    source = tiny_bundle / "bundle"
    manifest = json.loads((source / "manifest.json").read_text())
    paths = _paths(manifest)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths))
        parent = manifest
        for step in where[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(where[-1], None)
        else:
            parent[where[-1]] = data.draw(json_values)
        paths = _paths(manifest)
        if not paths:
            break
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "b"
        shutil.copytree(source, copy)
        (copy / "manifest.json").write_text(json.dumps(manifest))
        _clean(lambda: read_bundle(copy))


@FUZZ
@given(
    name=st.sampled_from(["manifest.json", "samples.parquet", "genes.parquet", "transcript_counts.npz"]),
    payload=st.binary(max_size=200),
)
def test_bundle_files_replaced_by_random_bytes(tiny_bundle, name, payload):
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "b"
        shutil.copytree(tiny_bundle / "bundle", copy)
        (copy / name).write_bytes(payload)
        _clean(lambda: read_bundle(copy))


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["transcript_id", "s1", "s2", "s3", "s4", "", "x"]), min_size=0, max_size=6
    ),
    rows=st.lists(st.lists(tokens, min_size=0, max_size=6), max_size=6),
    sep=st.sampled_from(["\t", ",", " "]),
    min_count=st.floats(min_value=0, max_value=50),
)
def test_count_table_fuzzed(tiny_bundle, header, rows, sep, min_count):
    with tempfile.TemporaryDirectory() as tmp:
        counts = Path(tmp) / "counts.tsv"
        counts.write_text("\n".join(sep.join(r) for r in [header, *rows]) + "\n")
        _clean(
            lambda: import_count_table(
                counts, tiny_bundle / "tx2gene.tsv", tiny_bundle / "samples.csv", min_count=min_count
            )
        )


@FUZZ
@given(payload=st.binary(max_size=300))
def test_h5ad_random_bytes(payload):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.h5ad"
        path.write_bytes(payload)
        _clean(lambda: import_h5ad(path))


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
@FUZZ
@given(
    values=st.lists(st.sampled_from([0.0, 1.0, 7.0, -1.0, np.nan, np.inf, 2.5]), min_size=12, max_size=12),
    gene_ids=st.lists(st.sampled_from(["gA", "gB", "", "gA "]), min_size=3, max_size=3),
    sample_ids=st.lists(st.sampled_from(["s1", "s2", "s1", ""]), min_size=4, max_size=4),
)
def test_h5ad_random_values_and_ids(values, gene_ids, sample_ids):
    x = np.asarray(values, dtype=np.float64).reshape(4, 3)
    obs = pd.DataFrame(index=pd.Index(sample_ids).astype(str))
    var = pd.DataFrame({"gene_id": gene_ids}, index=[f"t{i}" for i in range(3)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.h5ad"
        adata = ad.AnnData(X=x, obs=obs, var=var)
        adata.write_h5ad(path)
        _clean(lambda: import_h5ad(path, min_count=0, min_samples=0))
