"""Bundle folders: round trip and every kind of bad input the reader must name."""

import json

import numpy as np
import pandas as pd
import pytest

from isograph.bundle import Bundle, read_bundle, write_bundle
from isograph.bundle.io import FORMAT_NAME, FORMAT_VERSION, bundle_hash
from omicsrun import InputError


def _bundle(gene_counts=True, truth=False):
    rng = np.random.default_rng(0)
    genes = pd.DataFrame({"gene_id": ["g1", "g2", "g3"], "gene_name": ["A", "B", "C"]})
    transcripts = pd.DataFrame(
        {
            "transcript_id": ["t1", "t2", "t3", "t4", "t5"],
            "gene_id": ["g1", "g1", "g2", "g3", "g3"],
            "length": [1000.0, 1500.0, 800.0, 2000.0, 300.0],
        }
    )
    samples = pd.DataFrame(
        {
            "sample_id": ["s1", "s2", "s3", "s4"],
            "Dx": ["case", "ctrl", "case", "ctrl"],
            "Age": [30, 40, 50, 60],
        }
    )
    tx = rng.poisson(20, size=(5, 4)).astype(np.float32)
    gc = None
    if gene_counts:
        gc = np.stack([tx[0] + tx[1], tx[2], tx[3] + tx[4]])
    truth_tables = {}
    if truth:
        truth_tables = {
            "truth_modules": pd.DataFrame({"gene_id": ["g1", "g3"], "module_id": [1, 1]}),
            "truth_switch": pd.DataFrame({"gene_id": ["g1", "g2", "g3"], "has_switch": [True, False, True]}),
        }
    return Bundle(
        samples=samples,
        genes=genes,
        transcripts=transcripts,
        transcript_counts=tx,
        gene_counts=gc,
        truth=truth_tables,
        dataset_name="tiny",
        suite_name="unit",
        description="a tiny bundle",
        provenance={"source": "test", "traits": "Dx"},
    )


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "bundle"
    write_bundle(_bundle(truth=True), path)
    return path


def _manifest(path):
    return json.loads((path / "manifest.json").read_text())


def _set_manifest(path, manifest):
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_round_trip_keeps_every_table_and_matrix(tmp_path):
    original = _bundle(truth=True)
    path = write_bundle(original, tmp_path / "b")
    back = read_bundle(path)
    pd.testing.assert_frame_equal(back.samples, original.samples)
    pd.testing.assert_frame_equal(back.genes, original.genes)
    pd.testing.assert_frame_equal(back.transcripts, original.transcripts)
    np.testing.assert_array_equal(back.transcript_counts, original.transcript_counts)
    np.testing.assert_array_equal(back.gene_counts, original.gene_counts)
    assert sorted(back.truth) == ["truth_modules", "truth_switch"]
    pd.testing.assert_frame_equal(back.truth["truth_switch"], original.truth["truth_switch"])
    assert (back.dataset_name, back.suite_name, back.description) == ("tiny", "unit", "a tiny bundle")
    assert back.provenance == {"source": "test", "traits": "Dx"}
    manifest = _manifest(path)
    assert manifest["format"] == FORMAT_NAME and manifest["format_version"] == FORMAT_VERSION
    assert {m["assay_name"]: (m["n_features"], m["n_samples"]) for m in manifest["matrices"]} == {
        "transcript_counts": (5, 4),
        "gene_counts": (3, 4),
    }
    # the npz layout other tools read: key "data", rows in table order
    with np.load(path / "transcript_counts.npz") as npz:
        assert npz.files == ["data"]
        np.testing.assert_array_equal(npz["data"][:, 2], original.transcript_counts[:, 2])


def test_switch_only_bundle_has_no_gene_counts(tmp_path):
    path = write_bundle(_bundle(gene_counts=False), tmp_path / "b")
    back = read_bundle(path)
    assert back.gene_counts is None and not back.is_multiplex
    assert not (path / "gene_counts.npz").exists()


def test_same_bundle_gives_same_hash(tmp_path):
    a = write_bundle(_bundle(), tmp_path / "a")
    b = write_bundle(_bundle(), tmp_path / "b")
    assert bundle_hash(a) == bundle_hash(b)


def test_bundle_without_format_keys_is_accepted(written):
    manifest = _manifest(written)
    del manifest["format"], manifest["format_version"]
    _set_manifest(written, manifest)
    assert read_bundle(written).n_transcripts == 5


def test_newer_format_version_is_refused(written):
    manifest = _manifest(written)
    manifest["format_version"] = FORMAT_VERSION + 1
    _set_manifest(written, manifest)
    with pytest.raises(InputError, match="format_version"):
        read_bundle(written)


def test_other_format_is_refused(written):
    manifest = _manifest(written)
    manifest["format"] = "isograph-fit"
    _set_manifest(written, manifest)
    with pytest.raises(InputError, match="has format 'isograph-fit'; expected 'isograph-bundle'"):
        read_bundle(written)


def test_write_refuses_existing_folder_unless_overwrite(written):
    with pytest.raises(InputError, match="already holds results"):
        write_bundle(_bundle(), written)
    write_bundle(_bundle(gene_counts=False), written, overwrite=True)
    assert read_bundle(written).gene_counts is None


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_bundle(tmp_path / "nope")


def test_missing_manifest(written):
    (written / "manifest.json").unlink()
    with pytest.raises(InputError, match=r"no manifest.json"):
        read_bundle(written)


def test_malformed_json(written):
    (written / "manifest.json").write_text('{"dataset_name": "x", ')
    with pytest.raises(InputError, match="not valid JSON"):
        read_bundle(written)


def test_manifest_missing_key(written):
    manifest = _manifest(written)
    del manifest["matrices"]
    _set_manifest(written, manifest)
    with pytest.raises(InputError, match="no 'matrices' key"):
        read_bundle(written)


def test_manifest_entries_must_be_objects(written):
    manifest = _manifest(written)
    manifest["feature_tables"] = ["genes.parquet"]
    _set_manifest(written, manifest)
    with pytest.raises(InputError, match="list of objects"):
        read_bundle(written)


def test_matrix_shape_disagrees_with_manifest(written):
    np.savez_compressed(written / "transcript_counts.npz", data=np.ones((4, 4), dtype=np.float32))
    with pytest.raises(InputError, match=r"shape \(4, 4\) but the manifest says \(5, 4\)"):
        read_bundle(written)


def test_matrix_shape_disagrees_with_table(written):
    # manifest and matrix agree with each other, but the transcript table has 5 rows
    np.savez_compressed(written / "transcript_counts.npz", data=np.ones((4, 4), dtype=np.float32))
    manifest = _manifest(written)
    for entry in manifest["matrices"]:
        if entry["assay_name"] == "transcript_counts":
            entry["n_features"] = 4
    _set_manifest(written, manifest)
    with pytest.raises(InputError, match=r"shape \(5 transcripts, 4 samples\).*found shape \(4, 4\)"):
        read_bundle(written)


def test_table_rows_disagree_with_manifest(written):
    genes = pd.read_parquet(written / "genes.parquet")
    genes = pd.concat([genes, pd.DataFrame({"gene_id": ["g9"], "gene_name": ["Z"]})])
    genes.to_parquet(written / "genes.parquet", index=False)
    with pytest.raises(InputError, match=r"genes.parquet has 4 rows but the manifest says 3"):
        read_bundle(written)


@pytest.mark.parametrize(
    ("value", "expected"), [(np.nan, "finite counts"), (np.inf, "finite counts"), (-1.0, "non-negative")]
)
def test_bad_count_values(written, value, expected):
    with np.load(written / "transcript_counts.npz") as npz:
        data = npz["data"].copy()
    data[2, 1] = value
    np.savez_compressed(written / "transcript_counts.npz", data=data)
    with pytest.raises(InputError, match=f"{expected}.*row 2, column 1"):
        read_bundle(written)


def test_negative_gene_counts(written):
    with np.load(written / "gene_counts.npz") as npz:
        data = npz["data"].copy()
    data[0, 0] = -3
    np.savez_compressed(written / "gene_counts.npz", data=data)
    with pytest.raises(InputError, match="gene counts must hold non-negative counts"):
        read_bundle(written)


def test_corrupt_npz(written):
    (written / "gene_counts.npz").write_bytes(b"not a zip file")
    with pytest.raises(InputError, match=r"not a readable .npz"):
        read_bundle(written)


def test_npz_without_data_key(written):
    np.savez_compressed(written / "gene_counts.npz", counts=np.ones((3, 4)))
    with pytest.raises(InputError, match="no array under key 'data'"):
        read_bundle(written)


@pytest.mark.parametrize(
    ("filename", "column", "what"),
    [
        ("transcripts.parquet", "transcript_id", "transcript table"),
        ("genes.parquet", "gene_id", "gene table"),
        ("samples.parquet", "sample_id", "sample table"),
    ],
)
def test_duplicate_ids(written, filename, column, what):
    table = pd.read_parquet(written / filename)
    table.loc[1, column] = table.loc[0, column]
    if (
        filename == "genes.parquet"
    ):  # keep every transcript's gene present so the duplicate is the first fault
        table.loc[1, column] = "g1"
    table.to_parquet(written / filename, index=False)
    with pytest.raises(InputError, match=f"{what} ids must be unique; found 1 duplicate"):
        read_bundle(written)


def test_transcript_gene_absent(written):
    table = pd.read_parquet(written / "transcripts.parquet")
    table.loc[3, "gene_id"] = "g404"
    table.to_parquet(written / "transcripts.parquet", index=False)
    with pytest.raises(InputError, match="'t4' -> gene 'g404'"):
        read_bundle(written)


@pytest.mark.parametrize(
    "filename", ["genes.parquet", "samples.parquet", "transcript_counts.npz", "truth_modules.parquet"]
)
def test_missing_file(written, filename):
    (written / filename).unlink()
    with pytest.raises(InputError, match=f"{filename}.*does not exist"):
        read_bundle(written)


def test_unreadable_parquet(written):
    (written / "transcripts.parquet").write_text("transcript_id,gene_id\nt1,g1\n")
    with pytest.raises(InputError, match="not a readable parquet"):
        read_bundle(written)


def test_missing_required_column(written):
    table = pd.read_parquet(written / "transcripts.parquet").drop(columns=["gene_id"])
    table.to_parquet(written / "transcripts.parquet", index=False)
    with pytest.raises(InputError, match="transcript table has no column 'gene_id'"):
        read_bundle(written)
