import json

import pytest

from omicsrun.testing import require_shared
from perturbfm.cli import main
from perturbfm.data import dataset_hash, load_dataset
from perturbfm.splits import SplitStore


def _run(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    captured = capsys.readouterr()
    assert err.value.code in (0, None), captured.err
    return captured


def _fail(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    captured = capsys.readouterr()
    assert err.value.code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perturbfm: error: ")
    return lines[0]


@pytest.fixture
def synth(tmp_path, capsys):
    out = tmp_path / "synth"
    res = _run(
        [
            "data",
            "make-synth",
            "--out",
            str(out),
            "--n-obs",
            "300",
            "--n-genes",
            "30",
            "--n-contexts",
            "3",
            "--n-perts",
            "6",
        ],
        capsys,
    )
    assert f"data_hash={dataset_hash(out)}" in res.out
    return out


def test_synth_info_and_split_lifecycle(synth, tmp_path, capsys):
    assert (synth / "graphs" / "synthetic.npz").is_file()
    info = _run(["data", "info", str(synth)], capsys).out
    assert "cells        300" in info and "C0" in info and dataset_hash(synth) in info
    summary = json.loads(_run(["data", "info", str(synth), "--json"], capsys).out)
    assert summary["n_cells"] == 300 and set(summary["contexts"]) == {"C0", "C1", "C2"}
    store = tmp_path / "splits"
    out = _run(
        [
            "splits",
            "create",
            "--data",
            str(synth),
            "--spec",
            "context_ood",
            "--holdout-context",
            "C0",
            "--split-dir",
            str(store),
        ],
        capsys,
    ).out
    (line,) = out.strip().splitlines()
    split_hash = line.removeprefix("split_hash=")
    split = SplitStore(store).load(split_hash, data_hash=dataset_hash(synth))
    assert split.ood_axes == {"context": ["C0"]}
    # creating again gives the same hash and leaves one file
    assert (
        _run(
            [
                "splits",
                "create",
                "--data",
                str(synth),
                "--spec",
                "context_ood",
                "--holdout-context",
                "C0",
                "--split-dir",
                str(store),
            ],
            capsys,
        ).out
        == out
    )
    loco = _run(
        ["splits", "create", "--data", str(synth), "--spec", "loco", "--split-dir", str(store)], capsys
    )
    assert len(loco.out.strip().splitlines()) == 3
    listing = _run(["splits", "list", "--split-dir", str(store)], capsys).out
    assert split_hash[:16] in listing and len(listing.strip().splitlines()) == 4
    shown = json.loads(_run(["splits", "show", split_hash[:10], "--split-dir", str(store)], capsys).out)
    assert shown["split_hash"] == split_hash and shown["n_test"] == split.test_idx.size
    ok = _run(["splits", "verify", split_hash, "--data", str(synth), "--split-dir", str(store)], capsys).out
    assert ok.startswith("ok split_hash=")


def test_env_store_and_combo(synth, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PERTURBFM_SPLIT_DIR", str(tmp_path / "env_store"))
    out = _run(["splits", "create", "--data", str(synth), "--spec", "combo", "--seed", "3"], capsys).out
    assert (tmp_path / "env_store" / f"{out.strip().removeprefix('split_hash=')}.json").is_file()


def test_bad_input_exit_2(synth, tmp_path, capsys):
    store = str(tmp_path / "splits")
    msg = _fail(["splits", "create", "--data", str(synth), "--spec", "iid", "--split-dir", store], capsys)
    assert "unknown split spec 'iid'" in msg
    msg = _fail(
        [
            "splits",
            "create",
            "--data",
            str(synth),
            "--spec",
            "context_ood",
            "--holdout-context",
            "C7",
            "--split-dir",
            store,
        ],
        capsys,
    )
    assert "'C7' is not in the dataset" in msg
    msg = _fail(
        ["splits", "create", "--data", str(synth), "--spec", "combo", "--fold", "1", "--split-dir", store],
        capsys,
    )
    assert "does not take 'fold'" in msg
    assert not (tmp_path / "splits").exists()
    msg = _fail(["splits", "verify", "abcdef12", "--split-dir", store], capsys)
    assert "no split 'abcdef12'" in msg
    msg = _fail(["data", "info", str(tmp_path / "missing")], capsys)
    assert "does not exist" in msg
    msg = _fail(["data", "make-synth", "--out", str(synth)], capsys)
    assert "already holds results" in msg


def test_verify_refuses_other_data_and_tampering(synth, tmp_path, capsys):
    store = tmp_path / "splits"
    out = _run(
        ["splits", "create", "--data", str(synth), "--spec", "perturbation_ood", "--split-dir", str(store)],
        capsys,
    ).out
    split_hash = out.strip().removeprefix("split_hash=")
    other = tmp_path / "other"
    _run(
        [
            "data",
            "make-synth",
            "--out",
            str(other),
            "--n-obs",
            "300",
            "--n-genes",
            "30",
            "--seed",
            "1",
            "--n-perts",
            "6",
        ],
        capsys,
    )
    msg = _fail(["splits", "verify", split_hash, "--data", str(other), "--split-dir", str(store)], capsys)
    assert "was made for dataset" in msg
    path = store / f"{split_hash}.json"
    path.write_text(path.read_text().replace('"seed": 0', '"seed": 7'))
    msg = _fail(["splits", "verify", split_hash, "--split-dir", str(store)], capsys)
    assert "fails verification" in msg


def _h5ad_with(tmp_path, **change):
    import anndata as ad
    import numpy as np
    import pandas as pd

    obs = pd.DataFrame(
        {
            "perturbation": ["ctrl", "A", "ctrl", "A+B", "B", "ctrl"],
            "cell_type": ["x", "x", "x", "y", "y", "y"],
        },
        index=[f"c{i}" for i in range(6)],
    )
    obs.update(pd.DataFrame(change, index=obs.index) if change else pd.DataFrame(index=obs.index))
    ad.AnnData(X=np.arange(18, dtype=np.float32).reshape(6, 3), obs=obs).write_h5ad(tmp_path / "in.h5ad")
    return tmp_path / "in.h5ad"


def test_import_h5ad_cli(tmp_path, capsys):
    src = _h5ad_with(tmp_path)
    args = [
        "data",
        "import-h5ad",
        "--dataset",
        str(src),
        "--pert-key",
        "perturbation",
        "--context-key",
        "cell_type",
        "--control",
        "ctrl",
    ]
    out = _run([*args, "--out", str(tmp_path / "art")], capsys)
    assert "data_hash=" in out.out and "peak RSS" in out.err
    ds = load_dataset(tmp_path / "art")
    assert ds.obs["pert_genes"].tolist() == [[], ["A"], [], ["A", "B"], ["B"], []]
    msg = _fail(
        [
            "data",
            "import-h5ad",
            "--dataset",
            str(src),
            "--pert-key",
            "condition",
            "--context-key",
            "cell_type",
            "--control",
            "ctrl",
            "--out",
            str(tmp_path / "bad"),
        ],
        capsys,
    )
    assert "no column 'condition'" in msg and "'perturbation'" in msg
    assert not (tmp_path / "bad").exists()
    src = _h5ad_with(tmp_path, perturbation=["ctrl", "A", "ctrl", "A+B", "B", "B"])
    msg = _fail([*args, "--out", str(tmp_path / "bad2")], capsys)
    assert "['y']" in msg and "no control cells" in msg
    assert not (tmp_path / "bad2").exists()


@pytest.mark.shared_data
def test_devel_cli(tmp_path, capsys):
    path = require_shared("perturbench_devel/devel.h5ad")
    art = tmp_path / "devel"
    _run(
        [
            "data",
            "import-h5ad",
            "--dataset",
            str(path),
            "--out",
            str(art),
            "--pert-key",
            "perturbation",
            "--context-key",
            "cell_type",
            "--control",
            "control",
            "--covariate-keys",
            "dose,dataset",
        ],
        capsys,
    )
    store = str(tmp_path / "splits")
    for spec in (
        ["--spec", "combo", "--context", "k562"],
        ["--spec", "context_ood", "--holdout-context", "U87MG"],
    ):
        out = _run(["splits", "create", "--data", str(art), *spec, "--split-dir", store], capsys).out
        assert out.startswith("split_hash=")
