"""Bundle summary (seed 001 export), checked against counts computed another way."""

import json

import numpy as np
import pandas as pd
import pytest

from isograph.bundle import Bundle
from isograph.export import export_summary, summarize_bundle
from omicsrun import InputError


def _bundle(gene_counts=True):
    rng = np.random.default_rng(7)
    n_tx_per_gene = [1, 3, 2, 1, 4]
    genes = [f"g{i}" for i in range(len(n_tx_per_gene))]
    tx_gene = np.repeat(genes, n_tx_per_gene)
    transcripts = pd.DataFrame({"transcript_id": [f"t{i}" for i in range(len(tx_gene))], "gene_id": tx_gene})
    samples = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(6)],
            "Dx": ["case", "ctrl"] * 3,
            "batch": ["b1", "b1", "b2", "b2", "b3", "b3"],
            "Age": [30.0, 41.5, 50.0, np.nan, 22.0, 35.0],
            "smoker": [True, False, True, False, False, False],
        }
    )
    counts = rng.poisson(30, size=(len(tx_gene), 6)).astype(np.float32)
    gc = pd.DataFrame(counts).groupby(tx_gene).sum().loc[genes].to_numpy() if gene_counts else None
    truth = {"truth_modules": pd.DataFrame({"gene_id": ["g1", "g2"], "module_id": [1, 1]})}
    return Bundle(
        samples=samples,
        genes=pd.DataFrame({"gene_id": genes}),
        transcripts=transcripts,
        transcript_counts=counts,
        gene_counts=gc,
        truth=truth,
        dataset_name="toy",
        provenance={"traits": "Dx", "covariates": "batch,Age"},
    )


def test_summary_counts_match_a_second_computation():
    bundle = _bundle()
    summary = summarize_bundle(bundle)
    assert summary["dataset_name"] == "toy"
    assert (summary["n_samples"], summary["n_genes"], summary["n_transcripts"]) == (6, 5, 11)
    # multi-isoform genes counted from the transcript table directly: g1 (3), g2 (2), g4 (4)
    per_gene = bundle.transcripts.groupby("gene_id").size()
    assert summary["n_multi_isoform_genes"] == int((per_gene >= 2).sum()) == 3
    assert summary["transcripts_per_gene"] == {"min": 1, "median": 2.0, "max": 4}
    assert summary["assays"] == {"transcript_counts": [11, 6], "gene_counts": [5, 6]}
    assert summary["multiplex"] is True
    totals = bundle.transcript_counts.astype(np.float64).sum(axis=0)
    assert summary["library_size"]["median"] == pytest.approx(float(np.median(totals)))
    cols = summary["sample_columns"]
    assert list(cols) == ["Dx", "batch", "Age", "smoker"]
    assert cols["Dx"] == {
        "type": "categorical",
        "dtype": "object",
        "n_levels": 2,
        "n_missing": 0,
        "role": "trait",
        "levels": {"case": 3, "ctrl": 3},
    }
    assert cols["batch"]["n_levels"] == 3 and cols["batch"]["role"] == "covariate"
    assert cols["Age"]["type"] == "numeric" and cols["Age"]["n_levels"] == 5 and cols["Age"]["n_missing"] == 1
    assert "levels" not in cols["Age"]
    assert cols["smoker"]["type"] == "boolean" and cols["smoker"]["role"] == "other"
    assert summary["traits"] == ["Dx"] and summary["covariates"] == ["batch", "Age"]
    assert summary["truth_tables"] == ["truth_modules"]
    assert summary["provenance"] == {"traits": "Dx", "covariates": "batch,Age"}
    json.dumps(summary)  # JSON-ready


def test_switch_only_bundle():
    summary = summarize_bundle(_bundle(gene_counts=False))
    assert summary["multiplex"] is False
    assert summary["assays"] == {"transcript_counts": [11, 6]}


def test_export_writes_json_and_refuses_existing(tmp_path):
    out = tmp_path / "summary.json"
    export_summary(_bundle(), out)
    assert json.loads(out.read_text())["n_transcripts"] == 11
    with pytest.raises(InputError, match="already exists"):
        export_summary(_bundle(gene_counts=False), out)
    assert json.loads(out.read_text())["multiplex"] is True  # untouched
    export_summary(_bundle(gene_counts=False), out, overwrite=True)
    assert json.loads(out.read_text())["multiplex"] is False


def test_export_to_a_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        export_summary(_bundle(), tmp_path)
