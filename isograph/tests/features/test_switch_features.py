import numpy as np
import pandas as pd
import pytest

from isograph.bundle import Bundle
from isograph.features import build_features, covariate_design, log_cpm, residualize, switch_scores
from omicsrun import InputError


def _direct_switch(counts, gene, pseudocount, min_tx):
    # Per-gene loop: the reference the vectorised code must match.
    out, codes = [], []
    for g in np.unique(gene):
        rows = np.flatnonzero(gene == g)
        if len(rows) < min_tx:
            continue
        block = counts[rows].T + pseudocount
        props = block / block.sum(axis=1, keepdims=True)
        clr = np.log(props) - np.log(props).mean(axis=1, keepdims=True)
        clr -= clr.mean(axis=0)
        _, _, vt = np.linalg.svd(clr, full_matrices=False)
        axis = vt[0]
        major = np.argmax(props.mean(axis=0))
        if axis[major] < 0:
            axis = -axis
        out.append(clr @ axis)
        codes.append(g)
    return np.column_stack(out), np.array(codes)


def test_switch_scores_match_per_gene_svd():
    rng = np.random.default_rng(1)
    sizes = np.r_[1, 2, 2, 3, 4, 5, 7, 8, 9, 12, 20, 40, 1, 3]
    gene = np.repeat(np.arange(len(sizes)), sizes)
    perm = rng.permutation(len(gene))  # transcripts need not be sorted by gene
    gene = gene[perm]
    counts = rng.negative_binomial(3, 0.05, size=(len(gene), 30)).astype(float)
    scores, codes = switch_scores(counts, gene, pseudocount=0.5, min_transcripts=2)
    ref, ref_codes = _direct_switch(counts, gene, 0.5, 2)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_allclose(scores, ref, rtol=1e-8, atol=1e-8)


def test_switch_scores_recover_planted_switch_with_orientation():
    rng = np.random.default_rng(2)
    n = 200
    program = rng.standard_normal(n)
    # Gene 0: transcript 0 is the major one and gains usage with the program.
    logits = np.column_stack([1.5 + 0.8 * program, np.zeros(n), -0.5 - 0.3 * program])
    props = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    counts = np.vstack([rng.multinomial(2000, p) for p in props]).T.astype(float)
    scores, _ = switch_scores(counts, np.zeros(3, dtype=int))
    r = np.corrcoef(scores[:, 0], program)[0, 1]
    assert r > 0.95
    # Reversing the program flips the usage change; the major transcript stays, so does the sign rule.
    scores_rev, _ = switch_scores(counts[:, ::-1], np.zeros(3, dtype=int))
    assert np.corrcoef(scores_rev[:, 0], program[::-1])[0, 1] > 0.95


def test_log_cpm_matches_edger_formula():
    counts = np.array([[0, 10, 5], [100, 0, 5], [900, 90, 990]], dtype=float)
    lib = counts.sum(axis=0)
    prior = 2 * lib / lib.mean()
    expected = np.log2((counts + prior) / (lib + 2 * prior) * 1e6).T
    np.testing.assert_allclose(log_cpm(counts, prior_count=2.0), expected)
    # A doubled library gives the same value when counts double too (scale invariance up to prior).
    assert log_cpm(counts)[0, 2] == pytest.approx(expected[0, 2])


def test_switch_scores_and_log_cpm_reject_bad_input():
    counts = np.ones((3, 4))
    with pytest.raises(InputError, match="pseudocount must be > 0; found 0"):
        switch_scores(counts, np.zeros(3, dtype=int), pseudocount=0)
    with pytest.raises(InputError, match=r"one row per transcript \(2 gene codes\); found shape \(3, 4\)"):
        switch_scores(counts, np.zeros(2, dtype=int))
    with pytest.raises(InputError, match="prior_count must be > 0; found -1"):
        log_cpm(counts, prior_count=-1)


def test_residualize_matches_per_feature_lstsq_and_is_orthogonal():
    rng = np.random.default_rng(3)
    samples = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(40)],
            "batch": rng.choice(["a", "b", "c"], 40),
            "age": rng.normal(50, 10, 40),
        }
    )
    design, terms = covariate_design(samples, ["batch", "age"])
    assert terms == ["batch[b]", "batch[c]", "age"]
    y = rng.standard_normal((40, 6)) + design @ rng.standard_normal((3, 6))
    resid = residualize(y, design)
    full = np.hstack([np.ones((40, 1)), design])
    for j in range(6):
        coef = np.linalg.lstsq(full, y[:, j], rcond=None)[0]
        np.testing.assert_allclose(resid[:, j], y[:, j] - full @ coef, atol=1e-10)
    np.testing.assert_allclose(full.T @ resid, 0, atol=1e-9)


def test_too_many_covariates_is_an_input_error():
    samples = pd.DataFrame({"sample_id": list("abcd"), "batch": list("wxyz")})
    design, _ = covariate_design(samples, ["batch"])
    with pytest.raises(InputError, match="no residual degrees of freedom"):
        residualize(np.zeros((4, 2)), design)


def _small_bundle(rng, *, multiplex=True, provenance=None):
    n_genes, n = 30, 24
    sizes = rng.integers(1, 5, n_genes)
    genes = pd.DataFrame({"gene_id": [f"g{i}" for i in range(n_genes)]})
    tx_gene = np.repeat(genes["gene_id"].to_numpy(), sizes)
    transcripts = pd.DataFrame({"transcript_id": [f"t{i}" for i in range(len(tx_gene))], "gene_id": tx_gene})
    counts = rng.negative_binomial(4, 0.05, size=(len(tx_gene), n)).astype(float)
    samples = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "Batch": np.repeat(["b1", "b2"], n // 2),
            "AGE": rng.normal(40, 8, n),
            "Dx": np.tile(["case", "ctrl"], n // 2),
        }
    )
    gene_counts = None
    if multiplex:
        code = pd.Index(genes["gene_id"]).get_indexer(tx_gene)
        gene_counts = np.zeros((n_genes, n))
        np.add.at(gene_counts, code, counts)
    return Bundle(
        samples=samples,
        genes=genes,
        transcripts=transcripts,
        transcript_counts=counts,
        gene_counts=gene_counts,
        provenance=provenance or {},
    )


def test_build_features_channels_covariates_and_standardisation():
    rng = np.random.default_rng(4)
    bundle = _small_bundle(rng)
    fs = build_features(bundle)
    # batch/sex/age matched case-insensitively; log library size regressed by default
    assert fs.covariates == ("Batch", "AGE", "log_library_size")
    n_multi = int((bundle.transcripts_per_gene() >= 2).sum())
    assert (fs.feature_type == "switch").sum() == n_multi
    assert (fs.feature_type == "abundance").sum() == bundle.n_genes
    assert fs.matrix.dtype == np.float32
    np.testing.assert_allclose(fs.matrix.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(fs.matrix.std(axis=0), 1, atol=1e-4)
    design, _ = covariate_design(bundle.samples, ["Batch", "AGE"])
    depth = np.log(bundle.transcript_counts.sum(axis=0))
    full = np.hstack([np.ones((bundle.n_samples, 1)), design, depth[:, None] - depth.mean()])
    np.testing.assert_allclose(full.T @ fs.matrix.astype(float) / bundle.n_samples, 0, atol=1e-5)
    assert fs.dof == bundle.n_samples - 4
    unadjusted_depth = build_features(bundle, regress_library_size=False)
    assert unadjusted_depth.covariates == ("Batch", "AGE") and unadjusted_depth.dof == bundle.n_samples - 3
    assert list(fs.feature_ids[:1]) == [f"{fs.gene_ids[0]}:switch"]


def test_build_features_uses_recorded_covariates_and_switch_only():
    rng = np.random.default_rng(5)
    bundle = _small_bundle(rng, multiplex=False, provenance={"covariates": "Dx"})
    fs = build_features(bundle)
    assert fs.covariates == ("Dx", "log_library_size")
    assert set(fs.feature_type) == {"switch"} and not fs.is_multiplex
    assert build_features(bundle, regress_covariates=False).covariates == ()
    with pytest.raises(InputError, match="covariate column 'donor' is not in the sample table"):
        build_features(bundle, covariates=["donor"])
    with pytest.raises(InputError, match="pseudocount must be > 0"):
        build_features(bundle, pseudocount=0)
