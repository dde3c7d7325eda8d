"""The wgcna backend and the R bridge, against WGCNA's own output stored as golden files.

The golden files in ``data/`` were made by ``data/make_wgcna_golden.R``, which calls WGCNA
directly on a CSV (no IsoGraph code): the backend must reproduce R's labels and
``pickSoftThreshold`` table through its own data path (float32 files, the bridge, the label
mapping).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isograph import rbridge
from isograph.backends import get_backend
from isograph.backends.wgcna import WgcnaConfig
from isograph.features.build import FeatureSet
from omicsrun import InputError

DATA = Path(__file__).with_name("data")


def _golden_features() -> FeatureSet:
    table = pd.read_csv(DATA / "wgcna_golden_input.csv")
    genes = np.array(table.columns, dtype=object)
    return FeatureSet(
        matrix=table.to_numpy(dtype=np.float32),
        feature_ids=np.array([f"{g}:switch" for g in genes], dtype=object),
        feature_type=np.array(["switch"] * len(genes), dtype=object),
        gene_ids=genes,
        sample_ids=np.array([f"s{i}" for i in range(len(table))], dtype=object),
        dof=len(table) - 1,
    )


def _expected_modules(labels: pd.Series) -> pd.Series:
    # R's numeric colours are ordered by size (1 = largest) as our ids are; 0 is grey.
    return labels.map(lambda v: "unassigned" if v == 0 else f"M{v - 1:03d}")


@pytest.mark.r
@pytest.mark.slow
def test_unsigned_with_picked_power_matches_r():
    features = _golden_features()
    result = get_backend("wgcna").fit(features, config=WgcnaConfig(threads=1), seed=7)
    # pickSoftThreshold table equals R's
    golden_sft = pd.read_csv(DATA / "wgcna_golden_sft.csv")
    ours = pd.DataFrame(result.calibration["soft_threshold_fit"])
    np.testing.assert_allclose(ours["power"], golden_sft["power"])
    np.testing.assert_allclose(ours["r2"], golden_sft["r2"], atol=1e-6)
    np.testing.assert_allclose(ours["mean_k"], golden_sft["mean_k"], rtol=1e-5)
    # no power reaches R^2 0.85 here, so the sample-size rule gives 6 at n = 40 (unsigned)
    assert result.calibration["power"] == 6
    assert result.calibration["power_source"].startswith("sample-size rule")
    golden = pd.read_csv(DATA / "wgcna_golden_labels_unsigned.csv").set_index("feature")["label"]
    np.testing.assert_array_equal(result.state["feature_labels"], golden.to_numpy())
    modules = result.modules.set_index("gene_id")["module_id"]
    pd.testing.assert_series_equal(
        modules.reindex(golden.index), _expected_modules(golden), check_names=False, check_index_type=False
    )
    assert not result.calibration["blockwise"]
    # one block -> edges exist, only within modules, TOM in (0, 1]
    assert len(result.edges) > 0
    assert (modules[result.edges.gene_a].to_numpy() == modules[result.edges.gene_b].to_numpy()).all()
    assert result.edges.weight.between(0.1, 1.0).all()
    assert any("TOM calculation" in line for line in result.log)  # R's own messages


@pytest.mark.r
@pytest.mark.slow
def test_signed_blockwise_modules_match_r():
    features = _golden_features()
    config = WgcnaConfig(power=12, network_type="signed", threads=1)
    result = get_backend("wgcna").fit(features, config=config, seed=7)
    golden = pd.read_csv(DATA / "wgcna_golden_labels_signed.csv").set_index("feature")["label"]
    np.testing.assert_array_equal(result.state["feature_labels"], golden.to_numpy())
    assert result.calibration["power_source"] == "given"
    assert result.calibration["soft_threshold_fit"] == []


def test_missing_rscript_is_one_line(monkeypatch):
    monkeypatch.delenv("ISOGRAPH_RSCRIPT", raising=False)
    monkeypatch.setattr(rbridge.shutil, "which", lambda name: None)
    with pytest.raises(InputError, match=r"^Rscript not found on PATH \(R is not installed\); install R"):
        rbridge.check_r_packages(["WGCNA"])
    with pytest.raises(InputError, match="Rscript not found"):
        get_backend("wgcna").check_dependencies()


@pytest.mark.r
def test_missing_r_package_is_one_line():
    with pytest.raises(InputError, match="R package NoSuchPackageXyz is not installed"):
        rbridge.check_r_packages(["NoSuchPackageXyz"])


@pytest.mark.r
def test_bridge_passes_matrices_messages_errors_and_timeouts(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    rbridge.write_matrix(tmp_path / "x.f32", x)
    rbridge.write_params(tmp_path / "params.tsv", {"n": 3, "flag": True, "missing": None})
    script = (
        'p <- read.delim("params.tsv", colClasses = "character"); message("hello from R"); '
        'm <- matrix(readBin("x.f32", "numeric", n = 12, size = 4, endian = "little"), nrow = 3); '
        'write.csv(m, "out.csv", row.names = FALSE); writeLines(p$value, "params.txt")'
    )
    result = rbridge.run_r(script, tmp_path, timeout=60)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out.csv").to_numpy(), x, rtol=1e-6)
    assert (tmp_path / "params.txt").read_text().split() == ["3", "TRUE", "NA"]
    assert "[R] hello from R" in result.messages
    with pytest.raises(rbridge.RError, match=r"failed \(Rscript exit code 1\): .*boom"):
        rbridge.run_r('stop("boom")', tmp_path, timeout=60)
    with pytest.raises(rbridge.RError, match="ran past its timeout of 1 s"):
        rbridge.run_r("Sys.sleep(30)", tmp_path, timeout=1)
