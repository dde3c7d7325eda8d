import json

import pandas as pd
import pytest

from isograph.bundle import Bundle, write_bundle
from isograph.cli import main
from isograph.fixtures import make_fixture


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundles") / "core"
    write_bundle(make_fixture("core_v1", "standard", seed=0), path)
    return path


def _fails(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    return err


def test_fit_writes_outputs_and_honours_overrides(bundle_dir, tmp_path, capsys):
    out = tmp_path / "fit"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "fit",
                "--bundle",
                str(bundle_dir),
                "--out",
                str(out),
                "--seed",
                "3",
                "--",
                "baseline.min_module_size=25",
                "features.pseudocount=1",
            ]
        )
    assert exc.value.code in (0, None)
    assert "wrote" in capsys.readouterr().out
    modules = pd.read_parquet(out / "modules.parquet")
    sizes = modules.loc[modules.module_id != "unassigned", "module_id"].value_counts()
    assert sizes.min() >= 25
    config = json.loads((out / "fit_config.json").read_text())
    assert config["seed"] == 3
    assert config["config"]["features"]["pseudocount"] == 1.0
    assert not (out / "module_gene_roles.parquet").exists()  # switch-only bundle
    # an existing fit is refused without --overwrite and replaced with it
    _fails(capsys, ["fit", "--bundle", str(bundle_dir), "--out", str(out)], "already holds results")
    with pytest.raises(SystemExit) as exc:
        main(
            ["fit", "--bundle", str(bundle_dir), "--out", str(out), "--overwrite", "--no-regress-covariates"]
        )
    assert exc.value.code in (0, None)
    assert json.loads((out / "fit_config.json").read_text())["config"]["features"]["covariates"] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "nope"], "unknown backend 'nope'"),
        (["--", "baseline.nope=1"], "unknown override key 'baseline.nope'; valid keys are"),
        (["--", "baseline.min_module_size"], "malformed override"),
        (["--covariate", "donor"], "covariate column 'donor' is not in the sample table"),
    ],
)
def test_fit_bad_input(bundle_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "fit"
    _fails(capsys, ["fit", "--bundle", str(bundle_dir), "--out", str(out), *extra], message)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_fit_missing_bundle_and_constant_trait(bundle_dir, tmp_path, capsys):
    out = tmp_path / "fit"
    _fails(capsys, ["fit", "--bundle", str(tmp_path / "absent"), "--out", str(out)], "does not exist")
    bundle = make_fixture("core_v1", "standard", seed=0)
    constant = Bundle(
        samples=bundle.samples.assign(tissue="brain"),
        genes=bundle.genes,
        transcripts=bundle.transcripts,
        transcript_counts=bundle.transcript_counts,
    )
    path = tmp_path / "constant"
    write_bundle(constant, path)
    _fails(capsys, ["fit", "--bundle", str(path), "--out", str(out)], "trait column 'tissue' is constant")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant"]


def _tiny_bundle(path):
    rng = __import__("numpy").random.default_rng(0)
    write_bundle(
        Bundle(
            samples=pd.DataFrame({"sample_id": [f"s{i}" for i in range(6)], "age": range(6)}),
            genes=pd.DataFrame({"gene_id": ["g1", "g2"]}),
            transcripts=pd.DataFrame(
                {"transcript_id": ["t1", "t2", "t3", "t4"], "gene_id": ["g1", "g1", "g2", "g2"]}
            ),
            transcript_counts=rng.integers(0, 50, size=(4, 6)),
        ),
        path,
    )
    return path


def _corrupt(path, how):
    import numpy as np

    manifest = json.loads((path / "manifest.json").read_text())
    counts = np.load(path / "transcript_counts.npz")["data"].astype(float)
    if how == "missing manifest":
        (path / "manifest.json").unlink()
    elif how == "malformed manifest":
        (path / "manifest.json").write_text("{not json")
    elif how in ("matrix vs table", "nan", "negative"):
        if how == "matrix vs table":  # the manifest agrees with the matrix, the tables do not
            counts = np.vstack([counts, counts[:1]])
            manifest["matrices"][0]["n_features"] = counts.shape[0]
            (path / "manifest.json").write_text(json.dumps(manifest))
        else:
            counts[2, 3] = np.nan if how == "nan" else -1.0
        np.savez_compressed(path / "transcript_counts.npz", data=counts)
    elif how == "duplicate ids":
        samples = pd.read_parquet(path / "samples.parquet")
        samples.loc[1, "sample_id"] = "s0"
        samples.to_parquet(path / "samples.parquet", index=False)
    elif how == "absent gene":
        transcripts = pd.read_parquet(path / "transcripts.parquet")
        transcripts.loc[3, "gene_id"] = "g9"
        transcripts.to_parquet(path / "transcripts.parquet", index=False)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing manifest", "has no manifest.json"),
        ("malformed manifest", "is not valid JSON"),
        (
            "matrix vs table",
            "must have shape (4 transcripts, 6 samples) to match the tables; found shape (5, 6)",
        ),
        ("nan", "must hold finite counts; found 1 non-finite value(s), first at row 2, column 3"),
        ("negative", "must hold non-negative counts; found -1.0 at row 2, column 3"),
        ("duplicate ids", "sample table ids must be unique; found 1 duplicate(s), e.g. ['s0']"),
        ("absent gene", "absent from the gene table: 1 transcript(s), e.g. 't4' -> gene 'g9'"),
    ],
)
def test_fit_refuses_a_bad_bundle(tmp_path, capsys, how, message):
    bundle = _tiny_bundle(tmp_path / "bundle")
    _corrupt(bundle, how)
    out = tmp_path / "fit"
    _fails(capsys, ["fit", "--bundle", str(bundle), "--out", str(out)], message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no output, no temporary folder
