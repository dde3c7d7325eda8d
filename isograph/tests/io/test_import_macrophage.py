"""End to end on the real macrophage data (205,870 transcripts x 24 samples), checked against
an independent pandas computation from the raw files."""

import numpy as np
import pandas as pd
import pytest

from isograph.bundle import read_bundle, write_bundle
from isograph.io import import_count_table
from omicsrun.testing import require_shared

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_macrophage_import_matches_a_second_computation(tmp_path):
    folder = require_shared("macrophage_gencode29")
    counts_path = folder / "macrophage_gencode29_tx_counts.tsv.gz"
    bundle = import_count_table(
        counts_path,
        folder / "tx2gene_from_gencode27_rsem.tsv.gz",
        folder / "coldata.csv",
        lengths=folder / "macrophage_gencode29_tx_lengths.tsv.gz",
        traits=["condition_name"],
        covariates=["line_id"],
        min_count=10,
        min_samples=3,
        dataset_name="macrophage",
    )
    bundle = read_bundle(write_bundle(bundle, tmp_path / "macrophage"))

    # --- second computation, float64, straight from the files ------------------------------
    raw = pd.read_csv(counts_path, sep="\t", index_col=0)
    coldata = pd.read_csv(folder / "coldata.csv")
    tx2gene = pd.read_csv(folder / "tx2gene_from_gencode27_rsem.tsv.gz", sep="\t").dropna(
        subset=["gene_id_v27"]
    )
    gene_of = tx2gene.set_index("transcript_id")["gene_id_v27"]
    raw = raw[coldata["names"]]  # sample-table order
    mapped = raw.index.isin(gene_of.index)
    keep = mapped & ((raw >= 10).sum(axis=1) >= 3).to_numpy()

    assert list(bundle.samples["sample_id"]) == list(coldata["names"])
    assert list(bundle.samples["condition_name"]) == list(coldata["condition_name"])
    assert raw.shape == (205_870, 24)
    assert bundle.n_transcripts == int(keep.sum())
    assert list(bundle.transcripts["transcript_id"]) == list(raw.index[keep])
    assert bundle.provenance["n_transcripts_dropped_no_gene"] == str(int((~mapped).sum())) == "6511"
    assert bundle.n_genes == gene_of[raw.index[keep]].nunique()

    # per-sample totals of kept transcripts
    np.testing.assert_allclose(
        bundle.transcript_counts.sum(axis=0, dtype=np.float64), raw[keep].sum(axis=0).to_numpy(), rtol=1e-5
    )
    # one known transcript, value by value (ENST00000456328.2 = DDX11L1-202, first row of the file)
    row = list(bundle.transcripts["transcript_id"]).index("ENST00000456328.2")
    np.testing.assert_allclose(
        bundle.transcript_counts[row], raw.loc["ENST00000456328.2"].to_numpy(), rtol=1e-6
    )
    assert bundle.transcripts.loc[row, "mean_effective_length"] == pytest.approx(1485.555)
    # gene counts = sum over all mapped transcripts of the gene
    expected_genes = raw[mapped].groupby(gene_of[raw.index[mapped]].to_numpy()).sum()
    expected_genes = expected_genes.loc[bundle.genes["gene_id"]].to_numpy()
    np.testing.assert_allclose(bundle.gene_counts, expected_genes, rtol=1e-5, atol=1e-3)
    # multi-isoform genes (>= 2 kept transcripts)
    per_gene = gene_of[raw.index[keep]].value_counts()
    assert bundle.provenance["n_genes_multi_isoform_expressed"] == str(int((per_gene >= 2).sum()))
    assert bundle.provenance["traits"] == "condition_name"
    assert bundle.provenance["covariates"] == "line_id"
