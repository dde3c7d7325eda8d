"""``perturbfm train perturbfm-v*``, ``graphs build`` and ``ablate`` end to end on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omicsrun import InputError
from perturbfm.cli import main
from perturbfm.runs import load_predictions
from perturbfm.runs.testing import stored_synthetic_split
from perturbfm.runs.training import TRAINING_DIR, train_model


def _cli(argv: list[str]) -> int:
    """Run the command line; its exit status (0 on success)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


TINY = ["--param", "hidden_dim=8", "--param", "latent_dim=4", "--param", "batch_size=64"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    split = stored_synthetic_split(
        root, {"name": "combo"}, n_obs=400, n_genes=24, n_contexts=2, n_perts=10, seed=1
    )
    # The planted graph, given as a user's edge table (exercises --from edges).
    from perturbfm.data.artifact import load_dataset
    from perturbfm.data.graph import load_graph
    from perturbfm.data.synthetic import synthetic_graph

    var = load_dataset(root / "data").var
    adjacency = synthetic_graph(n_genes=24, seed=1)
    a, b = np.nonzero(adjacency)
    table = root / "edges.tsv"
    rows = "".join(f"{var[i]}\t{var[j]}\t1\n" for i, j in zip(a, b, strict=True))
    table.write_text("gene_a\tgene_b\tweight\n" + rows)
    data = str(root / "data")
    argv = [
        "graphs",
        "build",
        "--data",
        data,
        "--name",
        "synthetic",
        "--from",
        "edges",
        "--edges",
        str(table),
    ]
    assert _cli(argv) == 0
    np.testing.assert_array_equal(load_graph(root / "data" / "graphs" / "synthetic.npz") > 0, adjacency > 0)
    return root, split


def _args(root, split, *extra):
    return [
        "--data", str(root / "data"), "--split", split.frozen_hash[:12], "--split-dir", str(root / "splits"),
        "--runs-root", str(root / "runs"), *TINY, *extra,
    ]  # fmt: skip


def test_train_v2_ensemble_conformal_writes_a_full_run(stored, capsys):
    root, split = stored
    extra = ("--graph", "synthetic", "--ensemble", "2", "--epochs", "3")
    assert _cli(["train", "perturbfm-v2", *_args(root, split, *extra)]) == 0
    run = Path(capsys.readouterr().out.strip().split("run_dir=")[1])
    for name in ("config.json", "metrics.json", "calibration.json", "predictions.npz", "report.html",
                 "training.json", "model_diagnostics.json", "model/member_1/model.json"):  # fmt: skip
        assert (run / name).is_file(), name
    preds = load_predictions(run / "predictions.npz")
    with np.load(run / "predictions.npz") as npz:
        alea, epi = npz["var_aleatoric"], npz["var_epistemic"]
    # total variance = aleatoric + epistemic (law of total variance over the members)
    np.testing.assert_allclose(preds["var"], alea + epi, rtol=1e-5, atol=1e-6)
    assert (epi > 0).any()
    unc = json.loads((run / "metrics.json").read_text())["uncertainty"]
    assert set(unc["conformal"]["levels"]) == {"0.5", "0.8", "0.9", "0.95"}
    assert unc["epistemic"]["n_members"] == 2
    diag = json.loads((run / "model_diagnostics.json").read_text())["members"][0]["graph_reliance"]
    assert 0 < diag["mean_gate"][0] < 1
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["model"]["params"]["epochs"] == 3
    # K > 1: members sample unseen inputs unless told otherwise; group conformal by default
    assert config["config"]["model"]["params"]["unseen_inputs"] == "sample"
    assert config["config"]["conformal_unit"] == "group" and unc["conformal"]["unit"] == "group"
    assert unc["conformal"]["n_calibration_groups"] >= 1 and "levels_unit_cell" in unc["conformal"]
    assert not (root / "runs" / TRAINING_DIR).exists()  # the training folder is gone once committed


def test_cli_conformal_unit_option(stored, tmp_path, capsys):
    root, split = stored
    extra = ("--epochs", "2", "--conformal-unit", "cell", "--runs-root", str(tmp_path / "runs"))
    assert _cli(["train", "perturbfm-v0", *_args(root, split, *extra)]) == 0
    run = Path(capsys.readouterr().out.strip().split("run_dir=")[1])
    assert run.parent == tmp_path / "runs"
    config = json.loads((run / "config.json").read_text())["config"]
    conformal = json.loads((run / "metrics.json").read_text())["uncertainty"]["conformal"]
    assert config["conformal_unit"] == "cell" and conformal["unit"] == "cell"
    assert "levels_unit_cell" not in conformal  # it is the unit itself
    assert config["model"]["params"]["unseen_inputs"] == "mean"  # a single model keeps the default
    bad = ("--epochs", "1", "--conformal-unit", "gene", "--runs-root", str(tmp_path / "bad"))
    assert _cli(["train", "perturbfm-v0", *_args(root, split, *bad)]) == 2
    err = capsys.readouterr().err
    assert "conformal_unit must be one of ['group', 'cell']; found 'gene'" in err
    assert not (tmp_path / "bad").exists()


def test_interrupted_run_resumes_to_the_same_result(stored, tmp_path, monkeypatch):
    root, split = stored
    common = {
        "data_dir": root / "data", "split_hash": split.frozen_hash, "model": "perturbfm-v0",
        "params": {"hidden_dim": 8, "latent_dim": 4, "epochs": 4, "patience": 100},
        "split_dir": root / "splits",
    }  # fmt: skip
    clean = train_model(**common, runs_root=tmp_path / "clean")
    # Crash during prediction, after training checkpointed every epoch.
    import perturbfm.models.uncertainty as unc

    def boom(*_args, **_kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(unc.DeepEnsemble, "predict_components", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_model(**common, runs_root=tmp_path / "crash")
    monkeypatch.undo()
    assert list((tmp_path / "crash").glob(f"{TRAINING_DIR}/*/member_0/last.pt"))
    assert not [p for p in (tmp_path / "crash").iterdir() if p.name != TRAINING_DIR]  # no partial run
    with pytest.raises(InputError, match="pass --resume"):
        train_model(**common, runs_root=tmp_path / "crash")
    # A second process resuming the same folder meanwhile is refused, and nothing is lost.
    from omicsrun.commit import TargetBusyError, hold

    (work,) = (tmp_path / "crash" / TRAINING_DIR).iterdir()
    with hold(work, what="training folder"), pytest.raises(TargetBusyError, match="training folder"):
        train_model(**common, runs_root=tmp_path / "crash", resume=True)
    assert (work / "member_0" / "last.pt").is_file()
    resumed = train_model(**common, runs_root=tmp_path / "crash", resume=True)
    a, b = load_predictions(clean / "predictions.npz"), load_predictions(resumed / "predictions.npz")
    np.testing.assert_array_equal(a["mean"], b["mean"])
    history = json.loads((resumed / "training.json").read_text())["members"][0]
    assert history["resumed_from"] == 3


def test_eval_seed_does_not_change_the_model(stored, tmp_path):
    root, split = stored
    common = {
        "data_dir": root / "data", "split_hash": split.frozen_hash, "model": "perturbfm-v0",
        "params": {"hidden_dim": 8, "latent_dim": 4, "epochs": 2}, "split_dir": root / "splits",
        "runs_root": tmp_path,
    }  # fmt: skip
    a = train_model(**common, eval_seed=0)
    b = train_model(**common, eval_seed=5)
    np.testing.assert_array_equal(
        load_predictions(a / "predictions.npz")["mean"], load_predictions(b / "predictions.npz")["mean"]
    )


def test_coexpression_graph_of_another_split_is_refused(stored, tmp_path, capsys):
    root, split = stored
    from perturbfm.data.artifact import dataset_hash, load_dataset
    from perturbfm.splits import SplitStore, create_split

    other = create_split(
        load_dataset(root / "data"), {"name": "combo"}, seed=7, data_hash=dataset_hash(root / "data")
    )
    SplitStore(root / "splits").save(other)
    assert _cli([
        "graphs", "build", "--data", str(root / "data"), "--name", "coexpr_other", "--from", "coexpression",
        "--split", other.frozen_hash, "--split-dir", str(root / "splits"),
    ]) == 0  # fmt: skip
    assert "graph=" in capsys.readouterr().out
    assert (
        _cli(["train", "perturbfm-v2", *_args(root, split, "--graph", "coexpr_other", "--epochs", "1")]) == 2
    )
    assert "would leak held-out cells" in capsys.readouterr().err


def test_v1_split_is_refused_with_a_clear_message(stored, tmp_path):
    root, split = stored
    from omicsrun.atomic import dumps_json
    from omicsrun.hashing import sha256_json

    content = {k: v for k, v in split.content().items() if k != "ood_val_idx"}
    content["format_version"] = 1
    content["train_idx"] = sorted(content["train_idx"] + split.ood_val_idx.tolist())
    digest = sha256_json(content)
    (tmp_path / f"{digest}.json").write_text(dumps_json({**content, "frozen_hash": digest}))
    with pytest.raises(InputError, match="no OOD-validation part"):
        train_model(
            data_dir=root / "data",
            split_hash=digest,
            model="perturbfm-v0",
            split_dir=tmp_path,
            runs_root=tmp_path,
        )


def test_ablate_runs_named_configs_into_one_summary(stored, tmp_path, capsys):
    root, split = stored
    configs = tmp_path / "configs.json"
    tiny = {"hidden_dim": 8, "latent_dim": 4, "epochs": 2}
    configs.write_text(json.dumps([
        "baseline.additive",
        {"name": "v0.no_context", "params": tiny},
        {"name": "v2.single_graph_gated", "params": tiny},
    ]))  # fmt: skip
    assert _cli([
        "ablate", "--data", str(root / "data"), "--split", split.frozen_hash,
        "--split-dir", str(root / "splits"), "--configs", str(configs), "--graph", "synthetic",
        "--seeds", "2", "--out", str(tmp_path / "abl"), "--runs-root", str(tmp_path / "runs"),
    ]) == 0  # fmt: skip
    import pandas as pd

    table = pd.read_csv(tmp_path / "abl" / "summary.csv")
    assert table.groupby("config").size().to_dict() == {"baseline.additive": 2, "v0.no_context": 2,
                                                         "v2.single_graph_gated": 2}  # fmt: skip
    summary = json.loads((tmp_path / "abl" / "summary.json").read_text())["configs"]
    sub = table[table["config"] == "v0.no_context"]["pcc_delta"]
    assert summary["v0.no_context"]["pcc_delta"]["mean"] == pytest.approx(sub.mean())
    assert summary["v0.no_context"]["pcc_delta"]["sd"] == pytest.approx(sub.std(ddof=1))
    assert len(list((tmp_path / "runs").iterdir())) == 6


def test_ablate_refuses_unknown_config(stored, tmp_path):
    from perturbfm.runs.ablate import resolve_configs

    with pytest.raises(InputError, match=r"unknown ablation 'v9\.magic'"):
        resolve_configs(["v9.magic"], [])
    with pytest.raises(InputError, match="needs at least two graphs"):
        resolve_configs(["v2.multi_graph_gated"], ["a"])


@pytest.mark.parametrize(
    ("model", "param", "match"),
    [
        ("perturbfm-v0", "unseen_inputs=zero", "unseen_inputs must be one of"),
        ("perturbfm-v2", "gating=soft", "gating must be one of"),
        ("perturbfm-v0", "monitor=loss", "monitor must be one of"),
    ],
)
def test_bad_choice_is_refused_before_any_output(stored, tmp_path, capsys, model, param, match):
    # A bad hyperparameter choice fails in get_model, before the training folder exists.
    root, split = stored
    args = _args(root, split, "--param", param, "--epochs", "1")
    args[args.index("--runs-root") + 1] = str(tmp_path / "runs")
    assert _cli(["train", model, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
