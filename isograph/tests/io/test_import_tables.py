"""Import from a count table + transcript-to-gene map + sample table."""

import gzip

import numpy as np
import pandas as pd
import pytest

from isograph.io import import_count_table, read_count_table, read_tx2gene
from isograph.io.filters import expressed, map_transcripts, sum_by_group
from isograph.io.tables import delimiter_of, strip_version
from omicsrun import InputError

SAMPLES = ["S1", "S2", "S3", "S4"]


def _counts_frame():
    # 6 transcripts of 3 genes (+ one transcript without a gene)
    values = np.array(
        [
            [50, 60, 0, 40],  # tA1 gA  kept
            [12, 11, 10, 0],  # tA2 gA  kept (>=10 in 3 samples)
            [9, 9, 9, 9],  # tB1 gB  low -> dropped
            [100, 0, 0, 0],  # tB2 gB  low (1 sample) -> dropped
            [30, 30, 30, 30.5],  # tC1 gC  kept
            [70, 80, 90, 100],  # tX  no gene -> dropped
        ],
        dtype=float,
    )
    ids = ["tA1.1", "tA2.3", "tB1.1", "tB2.2", "tC1.7", "tX.1"]
    return pd.DataFrame(values, index=pd.Index(ids, name="transcript_id"), columns=SAMPLES)


def _write_inputs(tmp_path, *, sep="\t", gz=False, tx2gene_text=None, sample_frame=None):
    frame = _counts_frame()
    ext = ".csv" if sep == "," else ".tsv"
    counts = tmp_path / f"counts{ext}{'.gz' if gz else ''}"
    text = frame.to_csv(sep=sep)
    if gz:
        with gzip.open(counts, "wt") as handle:
            handle.write(text)
    else:
        counts.write_text(text)
    tx2gene = tmp_path / "tx2gene.tsv"
    # versionless tA2 in the map, an extra 'match' column, one transcript mapped to nothing
    tx2gene.write_text(
        tx2gene_text
        or "transcript_id\tgene_id_v27\tmatch\ntA1.1\tgA\texact\ntA2\tgA\tunversioned\ntB1.1\tgB\texact\n"
        "tB2.2\tgB\texact\ntC1.7\tgC\texact\ntX.1\t\tnone\n"
    )
    samples = tmp_path / "samples.csv"
    if sample_frame is None:
        # order differs from the count table; 'sample_id' is a label, 'names' matches the counts
        sample_frame = pd.DataFrame(
            {
                "names": ["S3", "S1", "S4", "S2"],
                "sample_id": ["c_A", "a_A", "d_B", "b_B"],
                "condition": ["treated", "naive", "treated", "naive"],
                "donor": ["d1", "d1", "d2", "d2"],
                "age": [30, 31, 40, 41],
            }
        )
    sample_frame.to_csv(samples, index=False)
    return counts, tx2gene, samples


def test_import_count_table_filters_maps_and_reorders(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    bundle = import_count_table(
        counts, tx2gene, samples, traits=["condition"], covariates=["donor"], min_count=10, min_samples=3
    )
    frame = _counts_frame()
    # sample order follows the sample table; ids come from the column that matches the counts
    assert list(bundle.samples["sample_id"]) == ["S3", "S1", "S4", "S2"]
    assert list(bundle.samples["sample_id_original"]) == ["c_A", "a_A", "d_B", "b_B"]
    assert list(bundle.transcripts["transcript_id"]) == ["tA1.1", "tA2.3", "tC1.7"]
    assert list(bundle.transcripts["gene_id"]) == ["gA", "gA", "gC"]
    assert list(bundle.genes["gene_id"]) == ["gA", "gC"]
    expected = frame.loc[["tA1.1", "tA2.3", "tC1.7"], ["S3", "S1", "S4", "S2"]].to_numpy(np.float32)
    np.testing.assert_array_equal(bundle.transcript_counts, expected)
    # gene counts: every mapped transcript of the gene, summed before the expression filter
    gene_a = frame.loc[["tA1.1", "tA2.3"], ["S3", "S1", "S4", "S2"]].sum().to_numpy()
    np.testing.assert_allclose(bundle.gene_counts[0], gene_a)
    np.testing.assert_allclose(bundle.gene_counts[1], frame.loc["tC1.7", ["S3", "S1", "S4", "S2"]].to_numpy())
    prov = bundle.provenance
    assert prov["traits"] == "condition" and prov["covariates"] == "donor"
    assert prov["sample_id_column"] == "names"
    assert prov["n_transcripts_input"] == "6"
    assert prov["n_transcripts_mapped_exact"] == "4"
    assert prov["n_transcripts_mapped_unversioned"] == "1"
    assert prov["n_transcripts_dropped_no_gene"] == "1"
    assert prov["n_transcripts_dropped_low_count"] == "2"
    assert prov["n_transcripts_kept"] == "3"
    assert prov["n_genes_kept"] == "2"
    assert prov["n_genes_multi_isoform_expressed"] == "1"
    assert prov["filter_min_count"] == "10" and prov["filter_min_samples"] == "3"


@pytest.mark.parametrize(("sep", "gz"), [(",", False), ("\t", True), (",", True)])
def test_csv_and_gzip_give_the_same_bundle(tmp_path, sep, gz):
    counts, tx2gene, samples = _write_inputs(tmp_path, sep=sep, gz=gz)
    bundle = import_count_table(counts, tx2gene, samples)
    assert bundle.n_transcripts == 3 and bundle.n_samples == 4


def test_no_gene_counts_makes_a_switch_only_bundle(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    bundle = import_count_table(counts, tx2gene, samples, gene_counts=False)
    assert bundle.gene_counts is None and not bundle.is_multiplex
    assert "switch-only" in bundle.provenance["gene_counts"]


def test_zero_thresholds_keep_every_mapped_transcript(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    bundle = import_count_table(counts, tx2gene, samples, min_count=0, min_samples=0)
    assert bundle.n_transcripts == 5 and bundle.n_genes == 3
    assert bundle.provenance["n_genes_multi_isoform_expressed"] == "2"


def test_only_named_columns(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    bundle = import_count_table(counts, tx2gene, samples, traits=["condition"], only_named_columns=True)
    assert list(bundle.samples.columns) == ["sample_id", "condition"]


def test_lengths_are_copied(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    lengths = tmp_path / "lengths.tsv"
    lengths.write_text(
        "transcript_id\tlength\tmean_effective_length\ntA1.1\t1000\t850.5\ntC1.7\t300\t120.25\n"
    )
    bundle = import_count_table(counts, tx2gene, samples, lengths=lengths)
    table = bundle.transcripts.set_index("transcript_id")
    assert table.loc["tA1.1", "mean_effective_length"] == 850.5
    assert table.loc["tC1.7", "length"] == 300
    assert np.isnan(table.loc["tA2.3", "length"])
    assert bundle.provenance["n_transcripts_without_length"] == "1"


def test_tx2gene_named_columns_win_over_position(tmp_path):
    text = "gene_id\ttranscript_id\nA\ttA1.1\nA\ttA2.3\nC\ttC1.7\n"
    path = tmp_path / "map.tsv"
    path.write_text(text)
    table = read_tx2gene(path)
    assert list(table["transcript_id"]) == ["tA1.1", "tA2.3", "tC1.7"]
    assert list(table["gene_id"]) == ["A", "A", "C"]


def test_tx2gene_without_header_is_recognised(tmp_path):
    path = tmp_path / "map.csv"
    path.write_text("tA1.1,gA\ntA2.3,gA\n")
    table = read_tx2gene(path, known_ids=pd.Index(["tA1.1", "tA2.3"]))
    assert list(table["transcript_id"]) == ["tA1.1", "tA2.3"]


def test_mapping_rule_on_versions():
    tx2gene = pd.DataFrame(
        {
            "transcript_id": ["T1.1", "T2", "T3.1", "T3.2", "T4.1_PAR_Y"],
            "gene_id": ["G1", "G2", "G3a", "G3b", "G4"],
        }
    )
    ids = pd.Index(["T1.1", "T2.5", "T3.9", "T4.2_PAR_Y", "T5.1"])
    mapping = map_transcripts(ids, tx2gene)
    # T3 is ambiguous without its version (two map rows), so it stays unmapped
    assert list(mapping.gene_ids) == ["G1", "G2", None, "G4", None]
    assert (mapping.n_exact, mapping.n_unversioned, mapping.n_unmapped) == (1, 2, 2)
    assert list(strip_version(pd.Index(["ENST1.12", "ENST2", "ENST3.1_PAR_Y", "a.b.3"]))) == [
        "ENST1",
        "ENST2",
        "ENST3_PAR_Y",
        "a.b",
    ]


def test_filter_and_sums_against_loops():
    rng = np.random.default_rng(3)
    counts = rng.poisson(5, size=(40, 7)).astype(np.float32)
    mask = expressed(counts, min_count=6, min_samples=3)
    assert list(mask) == [sum(v >= 6 for v in row) >= 3 for row in counts]
    codes = rng.integers(-1, 5, size=40)
    sums = sum_by_group(counts, codes, 5)
    for g in range(5):
        np.testing.assert_allclose(sums[g], counts[codes == g].sum(axis=0), rtol=1e-6)


def test_delimiter_rules(tmp_path):
    assert delimiter_of(tmp_path / "a.csv.gz") == ","
    assert delimiter_of(tmp_path / "a.tsv") == "\t"
    other = tmp_path / "a.dat"
    other.write_text("x;y;z\n1;2;3\n")
    assert delimiter_of(other) == ";"


# --- bad input ---------------------------------------------------------------------------
def test_missing_counts_file(tmp_path):
    _, tx2gene, samples = _write_inputs(tmp_path)
    with pytest.raises(InputError, match=r"count table .*nope.tsv does not exist"):
        import_count_table(tmp_path / "nope.tsv", tx2gene, samples)


def test_non_numeric_count(tmp_path):
    path = tmp_path / "counts.tsv"
    path.write_text("transcript_id\tS1\tS2\nt1\t1\tabc\n")
    with pytest.raises(InputError, match="must hold numbers"):
        read_count_table(path)


def test_count_table_with_only_ids(tmp_path):
    path = tmp_path / "counts.tsv"
    path.write_text("transcript_id\nt1\n")
    with pytest.raises(InputError, match="at least one sample column"):
        read_count_table(path)


def test_unreadable_gzip(tmp_path):
    path = tmp_path / "counts.tsv.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(InputError, match=r"cannot read|not a readable"):
        read_count_table(path)


def test_duplicate_transcript_ids(tmp_path):
    path = tmp_path / "counts.tsv"
    path.write_text("transcript_id\tS1\nt1\t1\nt1\t2\n")
    with pytest.raises(InputError, match="duplicated transcript id"):
        read_count_table(path)


@pytest.mark.parametrize(("value", "expected"), [("NA", "missing or non-finite"), ("-2", "negative value")])
def test_bad_count_values_name_transcript_and_sample(tmp_path, value, expected):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    frame = _counts_frame().astype(object)
    frame.loc["tB1.1", "S2"] = value
    counts.write_text(frame.to_csv(sep="\t"))
    with pytest.raises(InputError, match=f"{expected}.*'tB1.1', sample 'S2'"):
        import_count_table(counts, tx2gene, samples)


def test_sample_mismatch_lists_both_sides(tmp_path):
    frame = pd.DataFrame({"names": ["S1", "S2", "S3", "S9"], "condition": ["a", "b", "a", "b"]})
    counts, tx2gene, samples = _write_inputs(tmp_path, sample_frame=frame)
    with pytest.raises(
        InputError, match=r"1 only in the counts \['S4'\], 1 only in the sample table \['S9'\]"
    ):
        import_count_table(counts, tx2gene, samples)


def test_sample_table_without_id_column(tmp_path):
    frame = pd.DataFrame({"sample": SAMPLES, "condition": ["a", "b", "a", "b"]})
    counts, tx2gene, samples = _write_inputs(tmp_path, sample_frame=frame)
    with pytest.raises(InputError, match=r"neither of the sample-id columns.*\['sample', 'condition'\]"):
        import_count_table(counts, tx2gene, samples)
    bundle = import_count_table(counts, tx2gene, samples, sample_id_column="sample")
    assert list(bundle.samples["sample_id"]) == SAMPLES


def test_named_sample_id_column_must_exist(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    with pytest.raises(InputError, match="no column 'sid'"):
        import_count_table(counts, tx2gene, samples, sample_id_column="sid")


def test_duplicate_sample_ids(tmp_path):
    frame = pd.DataFrame({"names": ["S1", "S2", "S3", "S3"]})
    counts, tx2gene, samples = _write_inputs(tmp_path, sample_frame=frame)
    with pytest.raises(InputError, match="repeats sample id"):
        import_count_table(counts, tx2gene, samples)


def test_unknown_trait_names_the_columns_found(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    with pytest.raises(
        InputError, match=r"no column\(s\) \['Dx'\].*columns are \['names', 'sample_id', 'condition'"
    ):
        import_count_table(counts, tx2gene, samples, traits=["Dx"])


def test_constant_trait_is_refused(tmp_path):
    frame = pd.DataFrame({"names": SAMPLES, "batch": ["b1"] * 4})
    counts, tx2gene, samples = _write_inputs(tmp_path, sample_frame=frame)
    with pytest.raises(InputError, match="'batch' takes 1 distinct value"):
        import_count_table(counts, tx2gene, samples, covariates=["batch"])


def test_map_matching_nothing(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path, tx2gene_text="transcript_id\tgene_id\nZZZ1\tG1\n")
    with pytest.raises(InputError, match="no transcript id of the counts is in the transcript-to-gene table"):
        import_count_table(counts, tx2gene, samples)


def test_filter_leaving_nothing(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    with pytest.raises(InputError, match="no transcript passes the filter"):
        import_count_table(counts, tx2gene, samples, min_count=1e6)


@pytest.mark.parametrize(
    ("kwargs", "expected"), [({"min_count": -1}, "--min-count"), ({"min_samples": 5}, "--min-samples")]
)
def test_bad_filter_values(tmp_path, kwargs, expected):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    with pytest.raises(InputError, match=expected):
        import_count_table(counts, tx2gene, samples, **kwargs)


def test_one_column_tx2gene(tmp_path):
    counts, tx2gene, samples = _write_inputs(tmp_path, tx2gene_text="transcript_id\ntA1.1\n")
    with pytest.raises(InputError, match="needs two columns"):
        import_count_table(counts, tx2gene, samples)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("transcript_id\tnote\ntA1.1\tlong\n", "no numeric columns"),
        ("transcript_id\tlength\ntA1.1\t10\ntA1.1\t20\n", "duplicated transcript ids"),
    ],
)
def test_bad_length_table(tmp_path, text, expected):
    counts, tx2gene, samples = _write_inputs(tmp_path)
    lengths = tmp_path / "lengths.tsv"
    lengths.write_text(text)
    with pytest.raises(InputError, match=expected):
        import_count_table(counts, tx2gene, samples, lengths=lengths)


def test_missing_sample_table(tmp_path):
    counts, tx2gene, _ = _write_inputs(tmp_path)
    with pytest.raises(InputError, match=r"sample table .*absent.csv does not exist"):
        import_count_table(counts, tx2gene, tmp_path / "absent.csv")


def test_provenance_records_each_input_file_and_its_hash(tmp_path):
    from omicsrun.hashing import sha256_file

    counts, tx2gene, samples = _write_inputs(tmp_path)
    prov = import_count_table(counts, tx2gene, samples).provenance
    for key, path in {"counts": counts, "tx2gene": tx2gene, "samples": samples}.items():
        assert prov[f"{key}_file"] == str(path)
        assert prov[f"{key}_sha256"] == sha256_file(path)
    assert "lengths_file" not in prov
