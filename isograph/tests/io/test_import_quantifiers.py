"""Import from per-sample Salmon / kallisto / RSEM outputs (tximport-style)."""

import gzip

import numpy as np
import pandas as pd
import pytest

from isograph.io import import_quant_dir, read_quant_dir
from omicsrun import InputError
from omicsrun.testing import require_shared

TX = ["t1", "t2", "t3", "t4"]
GENES = ["g1", "g1", "g2", "g2"]
LENGTH = [1000, 2000, 500, 1500]
COUNTS = {"A": [100.0, 50.5, 20.0, 0.0], "B": [80.0, 40.0, 0.0, 30.0], "C": [120.0, 5.0, 25.0, 12.0]}
EFF = {
    "A": [850.0, 1850.0, 350.0, 1350.0],
    "B": [860.0, 1860.0, 360.0, 1360.0],
    "C": [840.0, 1840.0, 340.0, 1340.0],
}


def _write(path, frame, gz):
    text = frame.to_csv(sep="\t", index=False)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)


def _kallisto(root, gz=False, shuffle=False):
    for sample in COUNTS:
        folder = root / sample
        folder.mkdir(parents=True)
        frame = pd.DataFrame(
            {
                "target_id": TX,
                "length": LENGTH,
                "eff_length": EFF[sample],
                "est_counts": COUNTS[sample],
                "tpm": 1.0,
            }
        )
        if shuffle and sample == "B":
            frame = frame.iloc[::-1]
        _write(folder / "abundance.tsv", frame, gz)
    return root


def _rsem(root, gz=False):
    for sample in COUNTS:
        folder = root / sample
        folder.mkdir(parents=True)
        frame = pd.DataFrame(
            {
                "transcript_id": TX,
                "gene_id": GENES,
                "length": LENGTH,
                "effective_length": EFF[sample],
                "expected_count": COUNTS[sample],
                "TPM": 1.0,
                "FPKM": 1.0,
                "IsoPct": 50.0,
            }
        )
        _write(folder / f"{sample}.isoforms.results", frame, gz)
    return root


def _tx2gene(tmp_path):
    path = tmp_path / "tx2gene.csv"
    pd.DataFrame({"transcript_id": TX, "gene_id": GENES}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_kallisto_counts_lengths_and_gene_sums(tmp_path, gz, shuffle):
    root = _kallisto(tmp_path / "quant", gz=gz, shuffle=shuffle)
    bundle = import_quant_dir(root, tx2gene=_tx2gene(tmp_path), min_count=10, min_samples=2)
    assert bundle.provenance["source"] == "kallisto"
    assert list(bundle.samples["sample_id"]) == ["A", "B", "C"]
    # t3 (20, 0, 25) and t4 (0, 30, 12) reach 10 in 2 samples; all four kept
    expected = np.array([COUNTS[s] for s in "ABC"]).T
    np.testing.assert_allclose(bundle.transcript_counts, expected, rtol=1e-6)
    np.testing.assert_allclose(
        bundle.transcripts["mean_effective_length"], np.array([EFF[s] for s in "ABC"]).mean(axis=0)
    )
    np.testing.assert_array_equal(bundle.transcripts["length"], LENGTH)
    np.testing.assert_allclose(
        bundle.gene_counts, [expected[:2].sum(axis=0), expected[2:].sum(axis=0)], rtol=1e-6
    )


def test_rsem_genes_come_from_the_results_file(tmp_path):
    root = _rsem(tmp_path / "quant", gz=True)
    bundle = import_quant_dir(root, min_count=10, min_samples=3)
    assert bundle.provenance["source"] == "rsem"
    # only t1 (100, 80, 120) and t2? (50.5, 40, 5) -> t2 fails in C; keep t1 only
    assert list(bundle.transcripts["transcript_id"]) == ["t1"]
    assert list(bundle.genes["gene_id"]) == ["g1"]
    # gene counts still sum t1 + t2 (all mapped transcripts of g1)
    np.testing.assert_allclose(bundle.gene_counts[0], [150.5, 120.0, 125.0])


def test_rsem_flat_layout(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for sample in COUNTS:
        frame = pd.DataFrame(
            {
                "transcript_id": TX,
                "gene_id": GENES,
                "length": LENGTH,
                "effective_length": EFF[sample],
                "expected_count": COUNTS[sample],
            }
        )
        frame.to_csv(root / f"{sample}.isoforms.results", sep="\t", index=False)
    quant = read_quant_dir(root)
    assert list(quant.sample_ids) == ["A", "B", "C"]
    np.testing.assert_allclose(quant.counts[:, 1], COUNTS["B"])


def test_sample_table_with_traits(tmp_path):
    root = _kallisto(tmp_path / "quant")
    samples = tmp_path / "samples.tsv"
    samples.write_text("sample_id\tgroup\nC\tx\nA\ty\nB\tx\n")
    bundle = import_quant_dir(
        root, tx2gene=_tx2gene(tmp_path), samples=samples, traits=["group"], min_count=0
    )
    assert list(bundle.samples["sample_id"]) == ["C", "A", "B"]
    np.testing.assert_allclose(bundle.transcript_counts[:, 0], COUNTS["C"])
    assert bundle.provenance["traits"] == "group"


@pytest.mark.slow
@pytest.mark.shared_data
def test_salmon_real_output(tmp_path):
    root = require_shared("macrophage_gencode29/salmon_raw")
    tx2gene = require_shared("macrophage_gencode29/tx2gene_from_gencode27_rsem.tsv.gz")
    bundle = import_quant_dir(root, tx2gene=tx2gene, min_count=10, min_samples=2)
    assert bundle.provenance["source"] == "salmon"
    assert list(bundle.samples["sample_id"]) == ["SAMEA103885102", "SAMEA103885347"]
    # second computation: read the raw quant.sf files with pandas directly
    raw = {
        s: pd.read_csv(root / s / "quant.sf.gz", sep="\t", index_col="Name")
        for s in ["SAMEA103885102", "SAMEA103885347"]
    }
    assert bundle.provenance["n_transcripts_input"] == str(len(raw["SAMEA103885102"]))
    table = bundle.transcripts.set_index("transcript_id")
    first = table.index[0]
    np.testing.assert_allclose(
        bundle.transcript_counts[0], [raw[s].loc[first, "NumReads"] for s in raw], rtol=1e-6
    )
    np.testing.assert_allclose(
        table.loc[first, "mean_effective_length"],
        np.mean([raw[s].loc[first, "EffectiveLength"] for s in raw]),
        rtol=1e-6,
    )
    assert table.loc[first, "length"] == raw["SAMEA103885102"].loc[first, "Length"]
    reads = np.stack([raw[s]["NumReads"].to_numpy() for s in raw], axis=1)
    keep = (reads >= 10).sum(axis=1) >= 2
    mapped = raw["SAMEA103885102"].index.isin(pd.read_csv(tx2gene, sep="\t").dropna()["transcript_id"])
    assert bundle.n_transcripts == int((keep & mapped).sum())


# --- bad input ---------------------------------------------------------------------------
def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist or is not a folder"):
        read_quant_dir(tmp_path / "none")


def test_sample_folder_without_quant_file(tmp_path):
    root = _kallisto(tmp_path / "quant")
    (root / "D").mkdir()
    with pytest.raises(InputError, match=r"\['D'\] hold no quant.sf"):
        read_quant_dir(root)


def test_mixed_tools(tmp_path):
    root = _kallisto(tmp_path / "quant")
    other = _rsem(tmp_path / "other")
    (other / "A").rename(root / "Z")
    with pytest.raises(InputError, match="mixes outputs"):
        read_quant_dir(root)


def test_missing_column(tmp_path):
    root = _kallisto(tmp_path / "quant")
    frame = pd.read_csv(root / "B" / "abundance.tsv", sep="\t").drop(columns=["est_counts"])
    frame.to_csv(root / "B" / "abundance.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"no column\(s\) \['est_counts'\]"):
        read_quant_dir(root)


def test_different_transcript_sets(tmp_path):
    root = _kallisto(tmp_path / "quant")
    frame = pd.read_csv(root / "C" / "abundance.tsv", sep="\t").iloc[:3]
    frame.to_csv(root / "C" / "abundance.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="one index"):
        read_quant_dir(root)


def test_kallisto_needs_a_map(tmp_path):
    root = _kallisto(tmp_path / "quant")
    with pytest.raises(InputError, match="--tx2gene"):
        import_quant_dir(root)


def test_negative_counts_name_the_sample(tmp_path):
    root = _kallisto(tmp_path / "quant")
    frame = pd.read_csv(root / "B" / "abundance.tsv", sep="\t")
    frame.loc[2, "est_counts"] = -1
    frame.to_csv(root / "B" / "abundance.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"negative value.*'t3', sample 'B'"):
        import_quant_dir(root, tx2gene=_tx2gene(tmp_path))
