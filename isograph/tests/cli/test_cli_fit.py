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
