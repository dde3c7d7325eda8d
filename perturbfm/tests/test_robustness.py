"""PerturbFM's bad-input and output-safety cases of issue 12, one test per defect class."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from omicsrun import InputError
from omicsrun.hashing import sha256_dir
from perturbfm.cli import main
from perturbfm.data.h5ad import import_h5ad
from perturbfm.eval import validate_predictions
from perturbfm.runs import load_predictions, train_baseline
from perturbfm.runs.testing import tiny_context_ood_split


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("pfm_robust")
    split = tiny_context_ood_split(root, seed=0)
    return root, split.frozen_hash


def _one_line_exit_2(capsys, argv, *fragments):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "make-synth", "--out", "{tmp}/d", "--seed", "-1"],
        [
            "data",
            "import-h5ad",
            "--dataset",
            "x.h5ad",
            "--out",
            "{tmp}/d",
            "--pert-key",
            "p",
            "--context-key",
            "c",
            "--control",
            "ctrl",
            "--seed",
            "-5",
        ],
        ["splits", "create", "--data", "{tmp}/d", "--spec", "combo", "--seed", "-2"],
        ["train", "baseline", "--data", "{tmp}/d", "--split", "abc", "--baseline", "ridge", "--seed", "-3"],
        [
            "eval",
            "predictions",
            "--data",
            "{tmp}/d",
            "--split",
            "abc",
            "--preds",
            "p.npz",
            "--out",
            "{tmp}/e",
            "--seed",
            "-4",
        ],
    ],
)
def test_negative_seed_is_refused_by_every_command(tmp_path, capsys, argv):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    _one_line_exit_2(capsys, argv, "--seed", "non-negative")
    assert not (tmp_path / "d").exists()


def test_numeric_options_are_checked_at_the_edge(tmp_path, capsys):
    out = str(tmp_path / "d")
    _one_line_exit_2(capsys, ["data", "make-synth", "--out", out, "--noise", "-1"], "noise", ">= 0")
    _one_line_exit_2(capsys, ["data", "make-synth", "--out", out, "--noise", "nan"], "--noise", "finite")
    _one_line_exit_2(capsys, ["data", "make-synth", "--out", out, "--combo-fraction", "2"], "<= 1")
    _one_line_exit_2(capsys, ["data", "make-synth", "--out", out, "--n-obs", "0"], "n_obs")
    _one_line_exit_2(capsys, ["data", "make-synth"], "Missing option '--out'")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("param", "fragment"), [("alpha=abc", "finite number"), ("alpha=-1", "alpha"), ("alpha=true", "finite")]
)
def test_model_parameters_of_the_wrong_type_or_range_are_one_line(stored, tmp_path, capsys, param, fragment):
    root, split_hash = stored
    argv = [
        "train",
        "baseline",
        "--data",
        str(root / "data"),
        "--split",
        split_hash,
        "--baseline",
        "ridge",
        "--param",
        param,
        "--runs-root",
        str(tmp_path / "runs"),
        "--split-dir",
        str(root / "splits"),
    ]
    _one_line_exit_2(capsys, argv, fragment)
    assert not any(p for p in (tmp_path / "runs").glob("*") if not p.name.startswith("."))


def test_unwritable_runs_root_is_found_before_fitting(stored, tmp_path, capsys, monkeypatch):
    from perturbfm.models.baselines.ridge import RidgeDelta

    root, split_hash = stored
    blocker = tmp_path / "file"
    blocker.write_text("x")

    def never(*args, **kwargs):
        raise AssertionError("fit ran before the output was checked")

    monkeypatch.setattr(RidgeDelta, "_fit", never)
    argv = [
        "train",
        "baseline",
        "--data",
        str(root / "data"),
        "--split",
        split_hash,
        "--baseline",
        "ridge",
        "--runs-root",
        str(blocker / "runs"),
        "--split-dir",
        str(root / "splits"),
    ]
    _one_line_exit_2(capsys, argv, "is a file")


def test_runs_started_in_the_same_second_get_distinct_folders(stored, tmp_path, monkeypatch):
    from datetime import datetime, timezone

    import perturbfm.runs.ids as ids

    root, split_hash = stored
    fixed = datetime(2026, 1, 1, tzinfo=timezone.utc)
    real = ids.make_run_id
    monkeypatch.setattr("perturbfm.runs.core.make_run_id", lambda **kw: real(**kw, now=fixed))
    kwargs = {
        "data_dir": root / "data",
        "split_hash": split_hash,
        "baseline": "global_mean",
        "runs_root": tmp_path / "runs",
        "split_dir": root / "splits",
    }
    first, second = train_baseline(**kwargs), train_baseline(**kwargs)
    assert first != second and first.name.startswith("20260101-000000")
    assert (first / "metrics.json").is_file() and (second / "metrics.json").is_file()


def test_float_prediction_indices_are_refused_not_truncated(stored):
    root, split_hash = stored
    run = train_baseline(
        data_dir=root / "data",
        split_hash=split_hash,
        baseline="global_mean",
        runs_root=root / "runs_idx",
        split_dir=root / "splits",
    )
    preds = load_predictions(run / "predictions.npz")
    idx = preds["idx"].astype(np.float64) + 0.4  # truncates back to the right rows
    with pytest.raises(InputError, match="integers"):
        validate_predictions(preds["mean"], preds["var"], idx, preds["idx"], preds["mean"].shape[1])


def _h5ad(path: Path, labels: list[str], n_genes: int = 3) -> Path:
    n = len(labels)
    obs = pd.DataFrame({"p": labels, "c": ["k1"] * n}, index=[f"c{i}" for i in range(n)])
    x = np.random.default_rng(0).normal(size=(n, n_genes)).astype(np.float32)
    ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)])).write_h5ad(path)
    return path


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("Control", "only by case or whitespace"),
        ("control ", "only by case or whitespace"),
        ("control+KLF1", "names the control"),
        ("", "is empty"),
        ("KLF1+", "empty component"),
        (" KLF1", "spaces around"),
    ],
)
def test_perturbation_labels_that_would_be_accepted_silently_are_refused(tmp_path, bad, fragment):
    path = _h5ad(tmp_path / "x.h5ad", ["control", "control", "KLF1", bad, "GATA1"])
    with pytest.raises(InputError, match=fragment):
        import_h5ad(path, pert_key="p", context_key="c", control_label="control")


def test_zero_gene_matrix_is_refused(tmp_path):
    path = _h5ad(tmp_path / "x.h5ad", ["control", "control", "KLF1"], n_genes=0)
    with pytest.raises(InputError, match="0 genes"):
        import_h5ad(path, pert_key="p", context_key="c", control_label="control")


def test_crashed_demo_overwrite_keeps_the_earlier_demo_and_reruns(tmp_path, monkeypatch):
    from perturbfm import demo

    out = tmp_path / "demo"
    small = {
        "include_devel": False,
        "baselines": ["global_mean"],
        "synthetic_params": {"n_obs": 400, "n_genes": 30, "n_perts": 6},
    }
    demo.run_demo(out, **small)
    before = sha256_dir(out)

    def crash(**kwargs):
        raise RuntimeError("crash in the middle of the demo")

    monkeypatch.setattr("perturbfm.runs.train_baseline", crash)
    with pytest.raises(RuntimeError, match="crash"):
        demo.run_demo(out, overwrite=True, **small)
    assert sha256_dir(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    monkeypatch.undo()
    summary = demo.run_demo(out, overwrite=True, **small)
    assert (out / summary["rows"][0]["run_dir"] / "metrics.json").is_file()


def test_runtime_code_does_not_import_test_tooling():
    code = (
        "import sys; sys.modules['pytest'] = None; sys.modules['hypothesis'] = None; "
        "import perturbfm.demo, perturbfm.cli, isograph.cli, isograph.benchmark, omicsrun.commit"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
