"""``perturbfm train baseline`` and ``perturbfm eval predictions``: output and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perturbfm.cli import main
from perturbfm.data.artifact import save_dataset
from perturbfm.data.synthetic import make_synthetic
from perturbfm.runs import load_predictions, train_baseline
from perturbfm.runs.testing import tiny_context_ood_split


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    split = tiny_context_ood_split(root)
    run_dir = train_baseline(
        data_dir=root / "data",
        split_hash=split.frozen_hash,
        baseline="global_mean",
        runs_root=root / "runs",
        split_dir=root / "splits",
    )
    return {"root": root, "split_hash": split.frozen_hash, "preds": run_dir / "predictions.npz"}


@pytest.fixture
def env(trained, monkeypatch):
    monkeypatch.setenv("PERTURBFM_SPLIT_DIR", str(trained["root"] / "splits"))
    return trained


def _fails(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("perturbfm: error: ")
    return err


def _ok(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return capsys.readouterr().out.strip()


def test_train_then_eval(env, tmp_path, capsys):
    data = str(env["root"] / "data")
    argv = ["train", "baseline", "--data", data, "--split", env["split_hash"][:10], "--baseline", "ridge"]
    out = _ok([*argv, "--param", "alpha=0.5", "--runs-root", str(tmp_path / "runs")], capsys)
    assert out.startswith("run_dir=")
    run_dir = Path(out.split("=", 1)[1])
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "report.html").is_file()
    assert '"alpha": 0.5' in (run_dir / "config.json").read_text()
    preds = run_dir / "predictions.npz"
    argv = [
        "eval",
        "predictions",
        "--data",
        data,
        "--split",
        env["split_hash"],
        "--preds",
        str(preds),
        "--out",
        str(tmp_path / "ev"),
    ]
    assert _ok(argv, capsys) == f"out_dir={tmp_path / 'ev'}"
    assert (tmp_path / "ev" / "metrics.json").is_file()
    # --metrics: the selected metrics alone, same values as the full evaluation
    sel = [*argv[:-1], str(tmp_path / "sel"), "--metrics", "pds_l1,mae_all"]
    assert _ok(sel, capsys) == f"out_dir={tmp_path / 'sel'}"
    full = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    got = json.loads((tmp_path / "sel" / "metrics.json").read_text())
    assert got["metrics"] == ["pds_l1", "mae_all"] and not (tmp_path / "sel" / "report.html").exists()
    assert got["perturbench"]["global"] == {"pds_l1": full["perturbench"]["global"]["pds_l1"]}
    assert got["scperturbench"]["global"]["mae_all"] == pytest.approx(
        full["scperturbench"]["global"]["mae_all"]
    )
    assert (tmp_path / "sel" / "per_perturbation.csv").is_file()
    err = _fails([*argv[:-1], str(tmp_path / "bad"), "--metrics", "nll"], capsys)
    assert "non-selectable" in err and not (tmp_path / "bad").exists()


def test_train_bad_input(env, tmp_path, capsys):
    data = str(env["root"] / "data")
    runs = str(tmp_path / "runs")
    base = ["train", "baseline", "--data", data, "--runs-root", runs]
    assert "unknown model 'gears'" in _fails(
        [*base, "--split", env["split_hash"], "--baseline", "gears"], capsys
    )
    assert "no split '0123456789'" in _fails(
        [*base, "--split", "0123456789", "--baseline", "global_mean"], capsys
    )
    assert "has no parameter" in _fails(
        [*base, "--split", env["split_hash"], "--baseline", "ridge", "--param", "beta=1"], capsys
    )
    assert "key=value" in _fails(
        [*base, "--split", env["split_hash"], "--baseline", "ridge", "--param", "alpha"], capsys
    )
    other = make_synthetic(n_obs=200, n_genes=20, n_contexts=2, n_perts=5, seed=7)
    save_dataset(other, tmp_path / "other")
    err = _fails(
        [
            "train",
            "baseline",
            "--data",
            str(tmp_path / "other"),
            "--runs-root",
            runs,
            "--split",
            env["split_hash"],
            "--baseline",
            "global_mean",
        ],
        capsys,
    )
    assert "made for dataset" in err
    assert not (tmp_path / "runs").exists()


def _bad_preds(good: Path, path: Path, kind: str) -> Path:
    p = {k: v.copy() for k, v in load_predictions(good).items()}
    if kind == "shape":
        p["var"] = p["var"][:-1]
    elif kind == "index":
        p["idx"] = p["idx"] + 1
    elif kind == "nan":
        p["mean"][3, 1] = np.nan
    elif kind == "negative":
        p["var"][0, 0] = -1.0
    np.savez(path, **p)
    return path


@pytest.mark.parametrize(
    ("kind", "match"), [("shape", "shape"), ("index", "idx"), ("nan", "NaN"), ("negative", "negative")]
)
def test_eval_bad_predictions(env, tmp_path, capsys, kind, match):
    bad = _bad_preds(env["preds"], tmp_path / "bad.npz", kind)
    err = _fails(
        [
            "eval",
            "predictions",
            "--data",
            str(env["root"] / "data"),
            "--split",
            env["split_hash"],
            "--preds",
            str(bad),
            "--out",
            str(tmp_path / "ev"),
        ],
        capsys,
    )
    assert match in err
    assert not (tmp_path / "ev").exists()


def test_eval_unknown_split(env, tmp_path, capsys):
    err = _fails(
        [
            "eval",
            "predictions",
            "--data",
            str(env["root"] / "data"),
            "--split",
            "ffffffffff",
            "--preds",
            str(tmp_path / "x.npz"),
            "--out",
            str(tmp_path / "ev"),
        ],
        capsys,
    )
    assert "no split 'ffffffffff'" in err
    assert not (tmp_path / "ev").exists()


def test_export_and_leaderboard_commands(env, tmp_path, capsys):
    run_dir = env["preds"].parent
    out = _ok(["export", "--run", str(run_dir), "--out", str(tmp_path / "ex")], capsys)
    assert out == f"out_dir={tmp_path / 'ex'}"
    names = sorted(p.name for p in (tmp_path / "ex").iterdir())
    assert names == ["export.json", "pred_C1.h5ad", "real_C1.h5ad"]
    err = _fails(["export", "--run", str(run_dir), "--out", str(tmp_path / "ex")], capsys)
    assert "already holds results" in err
    board = tmp_path / "lb.html"
    out = _ok(["leaderboard", "--runs", str(run_dir.parent), "--out", str(board)], capsys)
    assert out == f"leaderboard={board}" and "global_mean" in board.read_text()
    err = _fails(["leaderboard", "--runs", str(tmp_path / "none"), "--out", str(board)], capsys)
    assert "is not a folder" in err


@pytest.mark.parametrize("preds_kind", ["good", "nan"])
def test_eval_refuses_an_artifact_changed_after_it_was_written(env, tmp_path, capsys, preds_kind):
    # eval computes while the artifact's checksums are still being verified on another
    # thread; a changed file must still be refused before anything is written, and its
    # message must win over whatever the changed data made fail (here: NaN predictions).
    import shutil

    data = tmp_path / "data"
    shutil.copytree(env["root"] / "data", data)
    meta = json.loads((data / "meta.json").read_text())
    name = next(n for n in meta["checksums"] if n.endswith(".npz") or n.endswith(".npy"))
    raw = bytearray((data / name).read_bytes())
    raw[-9] ^= 0x01  # one bit of the last stored value: the file still loads
    (data / name).write_bytes(bytes(raw))
    preds = env["preds"] if preds_kind == "good" else _bad_preds(env["preds"], tmp_path / "bad.npz", "nan")
    for extra in ([], ["--metrics", "pds_l1,mae_all"]):
        out = tmp_path / f"ev{len(extra)}"
        argv = ["eval", "predictions", "--data", str(data), "--split", env["split_hash"]]
        err = _fails([*argv, "--preds", str(preds), "--out", str(out), *extra], capsys)
        assert f"{name} changed after the artifact was written" in err
        assert not out.exists()
