"""IsoGraph's bad-input and output-safety cases of issue 12, one test per defect class."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from isograph.benchmark import ensure_dataset
from isograph.bundle import read_bundle, write_bundle
from isograph.cli import main
from isograph.fixtures import make_fixture
from omicsrun import InputError
from omicsrun.hashing import sha256_dir


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    bundle = make_fixture("core_v1", "nonlinear", seed=0)
    path = tmp_path_factory.mktemp("robust") / "bundle"
    write_bundle(bundle, path)
    return path


def _one_line_exit_2(capsys, argv, *fragments):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture
def bundle_copy(small_bundle, tmp_path):
    path = tmp_path / "b"
    shutil.copytree(small_bundle, path)
    return path


def _edit_manifest(path, edit):
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


# -- output is the input --------------------------------------------------------------------


def test_fit_into_its_own_bundle_is_refused_and_the_bundle_survives(bundle_copy, capsys):
    before = sha256_dir(bundle_copy)
    argv = ["fit", "--bundle", str(bundle_copy), "--out", str(bundle_copy), "--overwrite"]
    _one_line_exit_2(capsys, argv, "input")
    _one_line_exit_2(
        capsys, ["fit", "--bundle", str(bundle_copy), "--out", str(bundle_copy / "fit")], "input"
    )
    assert sha256_dir(bundle_copy) == before


def test_export_over_the_manifest_is_refused(bundle_copy, capsys):
    before = sha256_dir(bundle_copy)
    argv = [
        "export",
        "--bundle",
        str(bundle_copy),
        "--out",
        str(bundle_copy / "manifest.json"),
        "--overwrite",
    ]
    _one_line_exit_2(capsys, argv, "input")
    assert sha256_dir(bundle_copy) == before


def test_output_under_a_file_is_one_line_before_work(small_bundle, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_exit_2(
        capsys, ["fit", "--bundle", str(small_bundle), "--out", str(blocker / "fit")], "is a file"
    )


# -- numbers at the edge ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("features.pseudocount=inf", "features.pseudocount"),
        ("features.pseudocount=nan", "features.pseudocount"),
        ("features.pseudocount=-1", "> 0"),
        ("features.min_switch_transcripts=1", ">= 2"),
    ],
)
def test_non_finite_or_out_of_range_overrides_are_refused(small_bundle, tmp_path, capsys, override, fragment):
    argv = ["fit", "--bundle", str(small_bundle), "--out", str(tmp_path / "fit"), "--", override]
    _one_line_exit_2(capsys, argv, fragment)
    assert not (tmp_path / "fit").exists()


def test_usage_errors_are_one_line_and_help_stays(capsys):
    _one_line_exit_2(capsys, ["fit", "--bundle", "x"], "Missing option '--out'", "isograph fit --help")
    _one_line_exit_2(capsys, ["fit", "--bundle", "x", "--out", "y", "--seed", "abc"], "--seed")
    _one_line_exit_2(capsys, ["fit", "--bundle", "x", "--out", "y", "--seed", "-1"], "non-negative")
    _one_line_exit_2(capsys, ["nosuch"], "No such command")
    _one_line_exit_2(
        capsys, ["import", "--out", "y", "--counts", "c", "--min-count", "nan"], "--min-count", "finite"
    )
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--help"])
    assert exc.value.code == 0
    assert "--bundle" in capsys.readouterr().out


# -- manifests and files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../outside.parquet", "/etc/hostname", "sub/../../x.parquet"])
def test_manifest_naming_files_outside_the_bundle_is_refused(bundle_copy, tmp_path, name):
    shutil.copy(bundle_copy / "samples.parquet", tmp_path / "outside.parquet")
    _edit_manifest(bundle_copy, lambda m: m.update(sample_table=name))
    with pytest.raises(InputError, match="outside the folder"):
        read_bundle(bundle_copy)


def test_symlink_leading_out_of_the_bundle_is_refused(bundle_copy, tmp_path):
    shutil.copy(bundle_copy / "samples.parquet", tmp_path / "elsewhere.parquet")
    (bundle_copy / "link.parquet").symlink_to(tmp_path / "elsewhere.parquet")
    _edit_manifest(bundle_copy, lambda m: m.update(sample_table="link.parquet"))
    with pytest.raises(InputError, match="leads outside"):
        read_bundle(bundle_copy)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(sample_table=3),
        lambda m: m.update(format_version="one"),
        lambda m: m.update(truth_tables="truth_modules.parquet"),
        lambda m: m.update(provenance=[1, 2]),
        lambda m: m["provenance"].update(traits=["a"]),
        lambda m: m["matrices"][0].update(n_features="many"),
        lambda m: m["matrices"][0].update(filename=None),
        lambda m: m["feature_tables"][0].update(n_rows=1.5),
    ],
)
def test_wrong_json_types_in_the_manifest_are_one_input_error(bundle_copy, edit):
    _edit_manifest(bundle_copy, edit)
    with pytest.raises(InputError, match="must be"):
        read_bundle(bundle_copy)


def test_npy_under_an_npz_name_and_garbage_bytes_are_named(bundle_copy):
    np.save(bundle_copy / "plain.npy", np.zeros((2, 2)))
    shutil.move(bundle_copy / "plain.npy", bundle_copy / "transcript_counts.npz")
    with pytest.raises(InputError, match=r"single \.npy array"):
        read_bundle(bundle_copy)
    (bundle_copy / "transcript_counts.npz").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match=r"not a readable \.npz archive") as err:
        read_bundle(bundle_copy)
    assert "pickle" not in str(err.value)


def test_trait_that_is_all_inf_is_refused_not_dropped(small_bundle, tmp_path, capsys):
    bundle = read_bundle(small_bundle)
    samples = bundle.samples.copy()
    samples["weird"] = np.inf
    from dataclasses import replace

    path = tmp_path / "inf"
    write_bundle(replace(bundle, samples=samples), path)
    argv = ["fit", "--bundle", str(path), "--out", str(tmp_path / "fit"), "--trait", "weird"]
    _one_line_exit_2(capsys, argv, "trait 'weird'", "infinite")


def test_altered_cached_fixture_is_not_reused(tmp_path):
    from isograph.benchmark import cached_bundle_intact

    path, reused = ensure_dataset(tmp_path, "core_v1", "nonlinear", seed=0)
    assert not reused and cached_bundle_intact(path)
    assert ensure_dataset(tmp_path, "core_v1", "nonlinear", seed=0)[1]  # intact: reused
    with np.load(path / "transcript_counts.npz") as npz:
        counts = npz["data"].copy()
    original = counts.copy()
    counts[0, 0] += 7
    np.savez_compressed(path / "transcript_counts.npz", data=counts)
    assert not cached_bundle_intact(path)
    path, reused = ensure_dataset(tmp_path, "core_v1", "nonlinear", seed=0)
    assert not reused
    assert np.array_equal(read_bundle(path).transcript_counts, original)
