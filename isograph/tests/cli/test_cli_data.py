"""``isograph import`` and ``isograph export`` through ``isograph.cli.main``."""

import json

import numpy as np
import pandas as pd
import pytest

from isograph.bundle import read_bundle
from isograph.cli import main
from omicsrun.testing import require_shared

SAMPLES = ["S1", "S2", "S3", "S4"]


@pytest.fixture
def inputs(tmp_path):
    counts = pd.DataFrame(
        [[50, 60, 20, 40], [12, 11, 10, 30], [1, 0, 0, 2], [30, 30, 30, 30], [70, 80, 90, 100]],
        index=pd.Index(["tA1.1", "tA2.1", "tB1.1", "tC1.1", "tX.1"], name="transcript_id"),
        columns=SAMPLES,
        dtype=float,
    )
    paths = {
        "counts": tmp_path / "counts.tsv",
        "tx2gene": tmp_path / "tx2gene.tsv",
        "samples": tmp_path / "samples.csv",
    }
    counts.to_csv(paths["counts"], sep="\t")
    paths["tx2gene"].write_text("transcript_id\tgene_id\ntA1.1\tgA\ntA2.1\tgA\ntB1.1\tgB\ntC1.1\tgC\n")
    pd.DataFrame({"sample_id": SAMPLES, "Dx": ["a", "b", "a", "b"], "batch": ["x", "x", "y", "y"]}).to_csv(
        paths["samples"], index=False
    )
    paths["frame"] = counts
    return paths


def _import_args(inputs, out, *extra):
    return [
        "import",
        "--counts",
        str(inputs["counts"]),
        "--tx2gene",
        str(inputs["tx2gene"]),
        "--samples",
        str(inputs["samples"]),
        "--out",
        str(out),
        *extra,
    ]


def _run(argv):
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("isograph: error: ")
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_import_then_export(tmp_path, inputs, capsys):
    out = tmp_path / "bundle"
    code = _run(
        _import_args(
            inputs, out, "--trait", "Dx", "--covariate", "batch", "--min-count", "10", "--min-samples", "3"
        )
    )
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    bundle = read_bundle(out)
    assert list(bundle.transcripts["transcript_id"]) == ["tA1.1", "tA2.1", "tC1.1"]
    np.testing.assert_array_equal(
        bundle.transcript_counts, inputs["frame"].loc[["tA1.1", "tA2.1", "tC1.1"]].to_numpy()
    )
    assert bundle.dataset_name == "bundle"
    assert bundle.provenance["traits"] == "Dx" and bundle.provenance["covariates"] == "batch"
    assert bundle.provenance["n_transcripts_dropped_no_gene"] == "1"

    summary_path = tmp_path / "summary.json"
    assert _run(["export", "--bundle", str(out), "--out", str(summary_path)]) == 0
    summary = json.loads(summary_path.read_text())
    assert (summary["n_samples"], summary["n_genes"], summary["n_transcripts"]) == (4, 2, 3)
    assert summary["n_multi_isoform_genes"] == 1 and summary["multiplex"] is True
    assert summary["traits"] == ["Dx"] and summary["covariates"] == ["batch"]
    # existing summary is refused, then replaced with --overwrite
    capsys.readouterr()
    assert _run(["export", "--bundle", str(out), "--out", str(summary_path)]) == 2
    _one_line_error(capsys, "already exists")
    assert _run(["export", "--bundle", str(out), "--out", str(summary_path), "--overwrite"]) == 0


def test_no_gene_counts_and_comma_separated_names(tmp_path, inputs):
    out = tmp_path / "b"
    assert (
        _run(_import_args(inputs, out, "--no-gene-counts", "--covariate", "batch,Dx", "--only-named-columns"))
        == 0
    )
    bundle = read_bundle(out)
    assert bundle.gene_counts is None
    assert bundle.provenance["covariates"] == "batch,Dx"
    assert list(bundle.samples.columns) == ["sample_id", "batch", "Dx"]


def test_existing_bundle_is_refused_unless_overwrite(tmp_path, inputs, capsys):
    out = tmp_path / "b"
    assert _run(_import_args(inputs, out)) == 0
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    assert _run(_import_args(inputs, out)) == 2
    _one_line_error(capsys, "already holds results", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == before
    assert _run(_import_args(inputs, out, "--overwrite", "--no-gene-counts")) == 0
    assert read_bundle(out).gene_counts is None


def _corrupt_counts(inputs, value):
    frame = inputs["frame"].astype(object)
    frame.loc["tA2.1", "S3"] = value
    frame.to_csv(inputs["counts"], sep="\t")


@pytest.mark.parametrize(
    ("mutate", "extra", "fragments"),
    [
        (lambda p: p["counts"].unlink(), [], ["count table", "does not exist"]),
        (lambda p: p["counts"].write_bytes(b"\x00\x01garbage"), [], ["count table"]),
        (lambda p: p["counts"].write_text("transcript_id\tS1\tS2\nt1\tx\t1\n"), [], ["must hold numbers"]),
        (lambda p: _corrupt_counts(p, "-5"), [], ["negative", "'tA2.1'", "'S3'"]),
        (lambda p: _corrupt_counts(p, "NaN"), [], ["non-finite", "'tA2.1'", "'S3'"]),
        (
            lambda p: p["samples"].write_text("sample_id,Dx\nS1,a\nS2,b\nS3,a\nS9,b\n"),
            [],
            ["only in the counts ['S4']", "['S9']"],
        ),
        (lambda p: p["samples"].write_text("sample,Dx\nS1,a\n"), [], ["neither of the sample-id columns"]),
        (
            lambda p: None,
            ["--trait", "condition"],
            ["['condition']", "columns are ['sample_id', 'Dx', 'batch']"],
        ),
        (lambda p: None, ["--sample-id-column", "id"], ["no column 'id'"]),
        (lambda p: p["tx2gene"].unlink(), [], ["transcript-to-gene table", "does not exist"]),
        (lambda p: None, ["--min-samples", "9"], ["--min-samples"]),
        (lambda p: None, ["--h5ad", "x.h5ad"], ["exactly one of --counts, --quant-dir, --h5ad"]),
    ],
    ids=[
        "missing-file",
        "unreadable",
        "non-numeric",
        "negative",
        "nan",
        "sample-mismatch",
        "no-id-column",
        "unknown-trait",
        "unknown-id-column",
        "missing-tx2gene",
        "bad-min-samples",
        "two-sources",
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, inputs, capsys, mutate, extra, fragments):
    mutate(inputs)
    out = tmp_path / "bundle"
    assert _run(_import_args(inputs, out, *extra)) == 2
    _one_line_error(capsys, *fragments)
    assert not out.exists()
    assert [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")
    ] == []  # no temporary leftovers


def test_counts_without_tx2gene(tmp_path, inputs, capsys):
    out = tmp_path / "b"
    assert (
        _run(
            [
                "import",
                "--counts",
                str(inputs["counts"]),
                "--samples",
                str(inputs["samples"]),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    _one_line_error(capsys, "--tx2gene")
    assert not out.exists()


def test_export_of_a_broken_bundle(tmp_path, capsys):
    (tmp_path / "b").mkdir()
    out = tmp_path / "s.json"
    assert _run(["export", "--bundle", str(tmp_path / "b"), "--out", str(out)]) == 2
    _one_line_error(capsys, "no manifest.json")
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_salmon_quant_dir_through_the_cli(tmp_path, capsys):
    root = require_shared("macrophage_gencode29/salmon_raw")
    tx2gene = require_shared("macrophage_gencode29/tx2gene_from_gencode27_rsem.tsv.gz")
    out = tmp_path / "salmon"
    assert _run(["import", "--quant-dir", str(root), "--tx2gene", str(tx2gene), "--out", str(out)]) == 0
    bundle = read_bundle(out)
    assert bundle.n_samples == 2 and bundle.provenance["source"] == "salmon"
    assert bundle.provenance["filter_min_samples"] == "2"  # default min(3, n_samples)
    assert "mean_effective_length" in bundle.transcripts.columns


def test_lengths_without_counts_is_refused(tmp_path, inputs, capsys):
    out = tmp_path / "b"
    argv = ["import", "--quant-dir", str(tmp_path), "--lengths", str(inputs["counts"]), "--out", str(out)]
    assert _run(argv) == 2
    _one_line_error(capsys, "--lengths goes with --counts")
    assert not out.exists()


def test_export_to_a_folder_is_refused(tmp_path, inputs, capsys):
    bundle = tmp_path / "b"
    assert _run(_import_args(inputs, bundle)) == 0
    target = tmp_path / "a_folder"
    target.mkdir()
    capsys.readouterr()
    assert _run(["export", "--bundle", str(bundle), "--out", str(target)]) == 2
    _one_line_error(capsys, "is a folder")
    assert list(target.iterdir()) == []
