import time

import pandas as pd
import pytest

from isograph.annotate.gtf import load_gtf, read_gtf
from isograph.annotate.structure import annotate_switch_pairs
from isograph.cli import main
from omicsrun.testing import require_shared


def _exon_counts(path):
    import gzip

    counts = {}
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            fields = line.split("\t")
            if fields[2] == "exon":
                tx = fields[8].split('transcript_id "')[1].split('"')[0]
                counts[tx] = counts.get(tx, 0) + 1
    return counts


def test_gencode_and_ensembl_dialects_parse_to_one_schema():
    gencode = require_shared("gtf/gencode.v29.chr1_head119genes.gtf.gz")
    ensembl = require_shared("gtf/ensembl_human.pyranges_example.gtf.gz")
    a, b = read_gtf(gencode), read_gtf(ensembl)
    assert (a.dialect, b.dialect) == ("gencode", "ensembl")
    assert list(a.frame.columns) == list(b.frame.columns)
    assert a.transcripts()["transcript_id"].nunique() == 470
    assert b.transcripts()["transcript_id"].nunique() == 280
    # Exon counts agree with a plain line-by-line count.
    exons = a.frame[a.frame["feature"] == "exon"].groupby("transcript_id").size()
    assert exons.to_dict() == _exon_counts(gencode)
    assert set(b.frame["transcript_type"].dropna()) >= {"protein_coding", "lncRNA"}


def test_labels_of_known_pairs():
    gtf = read_gtf(require_shared("gtf/gencode.v29.chr1_head119genes.gtf.gz"))
    pairs = pd.DataFrame(
        {
            "gene_id": ["ENSG00000187634", "ENSG00000187634", "ENSG00000187634"],
            # SAMD11: protein_coding -> retained_intron; identical pair; two coding isoforms.
            "transcript_up": ["ENST00000474461", "ENST00000342066.7", "ENST00000437963.5"],
            "transcript_down": ["ENST00000342066.7", "ENST00000342066", "ENST00000420190.6"],
        }
    )
    out = annotate_switch_pairs(gtf, pairs)
    assert out["found"].all()
    assert out.loc[0, "biotype_switch"] and "biotype:protein_coding->retained_intron" in out.loc[0, "labels"]
    assert out.loc[0, "cds_length_up"] == 0 and out.loc[0, "cds_change"]
    assert out.loc[1, "labels"] == "" and not out.loc[1, ["exon_gain", "cds_change", "alt_tss"]].any()
    third = out.loc[2]
    assert (
        third["alt_tss"] and third["cds_change"] and third["n_exons_up"] == 5 and third["n_exons_down"] == 7
    )


def test_cli_annotate_with_cache(tmp_path, capsys):
    gtf = require_shared("gtf/gencode.v29.chr1_head119genes.gtf.gz")
    pairs = tmp_path / "pairs.tsv"
    pd.DataFrame(
        {
            "gene_id": ["g", "h"],
            "transcript_up": ["ENST00000474461.1", "ENST_NOPE"],
            "transcript_down": ["ENST00000342066.7", "x"],
        }
    ).to_csv(pairs, sep="\t", index=False)
    cache = tmp_path / "cache.parquet"
    argv = ["annotate-structure", "--gtf", str(gtf), "--switch-pairs", str(pairs), "--gtf-cache", str(cache)]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--output", str(tmp_path / "a.tsv")])
    assert exc.value.code in (0, None)
    assert "1 of 2 pairs found" in capsys.readouterr().out
    assert cache.is_file()
    start = time.perf_counter()
    cached = load_gtf(gtf, cache=cache)
    assert time.perf_counter() - start < 2.0
    assert len(cached.frame) == len(read_gtf(gtf).frame)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--output", str(tmp_path / "a.tsv")])
    assert exc.value.code == 2
    assert "already exists" in capsys.readouterr().err
