"""Registry of every metric PerturbFM reports: name, panel, direction, and what it compares.

The registry is written into ``metrics.json`` beside the numbers so that a reader never
has to guess which control, which genes or which E-distance convention a value uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Direction = Literal["lower", "higher"]
Panel = Literal["scperturbench", "perturbench", "celleval_de", "uncertainty", "diagnostics", "validation"]

CTRL = "test-split control cells of the same context (mean of their observed expression)"
DEG_GENES = (
    "top-100 DEGs of the true group vs control: Welch t-test of the group's true cells vs "
    "test-split control cells of the same context, ranked by |t|, within the metric genes "
    "(split.metric_genes HVGs, or all genes when none are given)"
)
METRIC_GENES = "split.metric_genes HVGs (all genes when none are given)"
SUBSAMPLE = "at most 2,000 cells per group, drawn without replacement with seed 42"
GROUP_AGG = (
    "computed per (pert_id, context_id) group of non-control test cells; per perturbation, "
    "per context and global values are means over groups weighted by the number of cells "
    "(groups where the metric is undefined are skipped); for combo splits also per_label: "
    "the same mean over held-out combinations with 0, 1 or 2 singles seen in training"
)
DE_SIDES = (
    "per group, two-sided Mann-Whitney U per gene (normal approximation, tie and continuity "
    "corrected, as pdex for cell-eval), BH FDR over the group's genes, log2FC = "
    "log2(expm1(mean group) / expm1(mean control)); true side: the group's true cells vs "
    f"{CTRL}; predicted side: its predicted cells (matched control + predicted delta) vs the "
    "same controls (the pair `perturbfm export` writes); significant = FDR < 0.05"
)
CELL_AGG = "pooled over entries (cells x genes) of the subset it reports on"


@dataclass(frozen=True)
class MetricSpec:
    """Metadata of one metric.

    Attributes
    ----------
    name
        Key under which the value appears in ``metrics.json``.
    panel
        Panel that reports it.
    direction
        ``"lower"`` or ``"higher"`` is better.
    compares
        Exactly what is compared with what (prediction side, truth side, control).
    genes
        Which genes enter.
    aggregation
        How group values become per-perturbation, per-context and global values.
    reference
        Published convention it follows.
    compute
        The panel function that computes it (returns it among its per-group or per-cell
        values); the evaluator calls these and keeps only registered keys.
    """

    name: str
    panel: Panel
    direction: Direction
    compares: str
    genes: str
    aggregation: str = GROUP_AGG
    reference: str = ""
    compute: Callable[..., Any] | None = field(default=None, compare=False, repr=False)


_SPECS: tuple[MetricSpec, ...] = (
    # --- scPerturBench panel ---------------------------------------------------------
    MetricSpec(
        "mse",
        "scperturbench",
        "lower",
        "mean over genes of (mean predicted expression - mean true expression)^2 of the group",
        DEG_GENES,
        reference="scPerturBench / pertpy 'mse' (MeanSquaredDistance on group means)",
    ),
    MetricSpec(
        "mse_all",
        "scperturbench",
        "lower",
        "as 'mse', on all metric genes instead of the top-100 DEGs",
        METRIC_GENES,
        reference="scPerturBench 5,000-HVG variant; cell-eval 'mse' (pseudobulks)",
    ),
    MetricSpec(
        "mae_all",
        "scperturbench",
        "lower",
        "mean over genes of |mean predicted expression - mean true expression| of the group",
        METRIC_GENES,
        reference="cell-eval 'mae' (pseudobulks)",
    ),
    MetricSpec(
        "pcc_delta",
        "scperturbench",
        "higher",
        "Pearson r between (group mean prediction - control mean) and (group mean truth - "
        f"control mean); the same real control on both sides: {CTRL}. GAMEABLE: the noise of "
        "that control mean is shared by both sides, so a no-effect model scores high when the "
        "test controls are few (devel context_ood: control_only 0.785); kept for comparison "
        "with published tables, read pcc_delta_centroid",
        DEG_GENES,
        reference="scPerturBench PCC-delta reported as r; its published table value is "
        "'pearson_distance_delta' = 1 - r",
    ),
    MetricSpec(
        "pcc_delta_centroid",
        "scperturbench",
        "higher",
        "Pearson r between (group mean prediction - perturbed centroid) and (group mean truth - "
        "perturbed centroid), the centroid being the unweighted mean of the true group means of "
        "every test group of the context (no control cells enter). A no-effect model predicts "
        "the control, whose offset from the centroid is the average effect, unrelated to what "
        "is specific to each perturbation: about 0. Undefined for a context with one group",
        DEG_GENES,
        reference="Systema (Vinas Torne et al., Nat Biotech 2025) centroid PearsonDelta",
    ),
    MetricSpec(
        "pcc_delta_centroid_all",
        "scperturbench",
        "higher",
        "as 'pcc_delta_centroid', on all metric genes instead of the top-100 DEGs",
        METRIC_GENES,
        reference="Systema centroid PearsonDelta",
    ),
    MetricSpec(
        "pearson_distance_delta",
        "scperturbench",
        "lower",
        "1 - pcc_delta (the number scPerturBench tabulates, pertpy 'pearson_distance' on "
        "control-subtracted data)",
        DEG_GENES,
        reference="scPerturBench calPerformance: pertpy pearson_distance after calculateDelta",
    ),
    MetricSpec(
        "pcc_delta_all",
        "scperturbench",
        "higher",
        "as 'pcc_delta', on all metric genes instead of the top-100 DEGs",
        METRIC_GENES,
    ),
    MetricSpec(
        "edistance",
        "scperturbench",
        "lower",
        "energy distance between predicted cells (matched control + predicted delta) and true "
        "cells of the group. Convention 'scperturb': squared Euclidean distances, "
        "E = 2*mean_ij d(x_i,y_j) - sum_{i!=j} d(x_i,x_j)/(n(n-1)) - sum_{i!=j} "
        f"d(y_i,y_j)/(m(m-1)); {SUBSAMPLE}",
        DEG_GENES,
        reference="scperturb 0.1.0 edist(dist='sqeuclidean', sample_correct=True)",
    ),
    MetricSpec(
        "edistance_celleval",
        "scperturbench",
        "lower",
        "energy distance as 'edistance' but convention 'cell-eval': Euclidean distances, "
        "V-statistic (means over all pairs including the diagonal); " + SUBSAMPLE,
        DEG_GENES,
        reference="cell-eval 0.8 metrics._anndata.edistance inner _edistance",
    ),
    MetricSpec(
        "wasserstein_1d",
        "scperturbench",
        "lower",
        "mean over genes of the 1-D Wasserstein-1 distance between the predicted and true "
        f"per-cell values of that gene (scipy.stats.wasserstein_distance); {SUBSAMPLE}. "
        "Differs from scPerturBench's multivariate Sinkhorn (ott) Wasserstein.",
        DEG_GENES,
    ),
    MetricSpec(
        "kl_gauss_sym_log2",
        "scperturbench",
        "lower",
        "log2(1 + KL) with KL = mean over genes of the symmetric KL divergence between "
        "per-gene Gaussians fitted (population std + 1e-8) to predicted and true cells; " + SUBSAMPLE,
        DEG_GENES,
        reference="scPerturBench: pertpy 'sym_kldiv', reported as log2(x+1). Withheld (None) "
        "for a group when one of its DEGs has zero variance in the predicted or the true cells: "
        "the 1e-8 floor then puts the value near 42-48 whatever the prediction (sparse data); "
        "flags.kl_zero_variance_groups counts them",
    ),
    MetricSpec(
        "common_degs",
        "scperturbench",
        "higher",
        "|top-100 DEGs(prediction) & top-100 DEGs(truth)| / 100, each by Welch t-test "
        f"(|t|) of the group's predicted or true cells vs {CTRL}",
        METRIC_GENES,
        reference="scPerturBench common-DEGs, as a fraction of k",
    ),
    # --- PerturBench panel -----------------------------------------------------------
    MetricSpec(
        "rmse",
        "perturbench",
        "lower",
        "root mean squared error between mean predicted and mean true log-normalised "
        "expression of the (context, perturbation) group",
        METRIC_GENES,
        reference="PerturBench rmse",
    ),
    MetricSpec(
        "cosine_logfc",
        "perturbench",
        "higher",
        "cosine between predicted and true logFC, logFC = log2(max(mean_group,0) + 0.1) - "
        f"log2(max(mean_ctrl,0) + 0.1) on group-mean expression; control = {CTRL} (both sides)",
        METRIC_GENES,
        reference="PerturBench cosine_logfc",
    ),
    MetricSpec(
        "rank_rmse",
        "perturbench",
        "lower",
        "within a context: M[q,p] = rmse(pred_q, true_p); position of q=p in column p sorted "
        "best-first (ties broken at random, seeded) / (N-1): 0 perfect, 0.5 random",
        METRIC_GENES,
        reference="PerturBench rank metric",
    ),
    MetricSpec(
        "rank_rmse_transpose",
        "perturbench",
        "lower",
        "as rank_rmse on M' (position of true_p among all true_q for prediction p)",
        METRIC_GENES,
        reference="PerturBench rank_transpose",
    ),
    MetricSpec(
        "rank_cosine_logfc",
        "perturbench",
        "lower",
        "as rank_rmse with M[q,p] = cosine_logfc(pred_q, true_p), sorted descending",
        METRIC_GENES,
        reference="PerturBench rank metric",
    ),
    MetricSpec(
        "rank_cosine_logfc_transpose",
        "perturbench",
        "lower",
        "as rank_cosine_logfc on M'",
        METRIC_GENES,
        reference="PerturBench rank_transpose",
    ),
    MetricSpec(
        "pearson_delta_celleval",
        "perturbench",
        "higher",
        "cell-eval's convention: Pearson r between (predicted pseudobulk - control pseudobulk of "
        "the prediction file) and (true pseudobulk - control pseudobulk of the truth file); "
        "`perturbfm export` writes the test-split controls into both files, so both sides "
        f"subtract {CTRL} (shared control noise, like pcc_delta on all metric genes). Equals "
        "cell-eval 0.8.2 pearson_delta on the exported pair to 1e-6",
        METRIC_GENES,
        reference="cell-eval pearson_delta",
    ),
    MetricSpec(
        "pearson_delta_own_control",
        "perturbench",
        "higher",
        "each side against its own control: Pearson r between the model's own predicted effect "
        "(group mean prediction - mean of the matched control cells the prediction was made "
        "from = group mean predicted delta) and the true effect (group mean truth - "
        f"{CTRL}). A no-effect model has a flat prediction side: undefined (None)",
        METRIC_GENES,
        reference="cell-eval pearson_delta idea with the prediction side's own controls",
    ),
    MetricSpec(
        "pds_l1",
        "perturbench",
        "higher",
        "within a context: L1 distance between the predicted effect of p and the true effect "
        "of every q (effects as in pearson_delta_celleval), target gene(s) of p excluded; "
        "score = 1 - rank(true p)/N, rank = number of true effects strictly closer. Equals "
        "cell-eval 0.8.2 discrimination_score_l1 on the exported pair when distances are "
        "distinct (cell-eval breaks ties by argsort order) and for single-gene perturbations "
        "(cell-eval excludes only a gene named like the perturbation, so nothing for A+B)",
        METRIC_GENES + " minus the perturbed genes",
        reference="cell-eval discrimination_score_l1",
    ),
    # --- cell-eval DE panel -----------------------------------------------------------
    MetricSpec(
        "overlap_at_N",
        "celleval_de",
        "higher",
        "|top-k true & top-k predicted significant genes| / k, both ranked by |log2FC|, k = "
        "number of true significant genes; 0 when the truth has none (cell-eval's convention; "
        f"flags.de_no_true_significant_groups counts them). {DE_SIDES}",
        METRIC_GENES,
        reference="cell-eval 0.8.2 overlap_at_N (DES)",
    ),
    MetricSpec(
        "overlap_at_50",
        "celleval_de",
        "higher",
        "as overlap_at_N with k capped at 50",
        METRIC_GENES,
        reference="cell-eval 0.8.2 overlap_at_50",
    ),
    MetricSpec(
        "overlap_at_100",
        "celleval_de",
        "higher",
        "as overlap_at_N with k capped at 100",
        METRIC_GENES,
        reference="cell-eval 0.8.2 overlap_at_100",
    ),
    MetricSpec(
        "de_direction_match",
        "celleval_de",
        "higher",
        "fraction of the true significant genes whose predicted log2FC has the same sign; None "
        f"when the truth has no significant gene. {DE_SIDES}",
        METRIC_GENES,
        reference="cell-eval 0.8.2 de_direction_match",
    ),
    MetricSpec(
        "de_spearman_lfc_sig",
        "celleval_de",
        "higher",
        "Spearman correlation of true and predicted log2FC over the true significant genes; "
        f"None with fewer than 2. {DE_SIDES}",
        METRIC_GENES,
        reference="cell-eval 0.8.2 de_spearman_lfc_sig",
    ),
    # --- uncertainty panel -----------------------------------------------------------
    MetricSpec(
        "coverage",
        "uncertainty",
        "higher",
        "fraction of entries whose true delta (X_pert - matched control) lies in the central "
        "Gaussian interval mean +- z * sqrt(var) at levels 0.5/0.8/0.9/0.95; ideal = level",
        METRIC_GENES,
        CELL_AGG,
    ),
    MetricSpec(
        "nll",
        "uncertainty",
        "lower",
        "mean Gaussian negative log-likelihood per entry, 0.5*log(2*pi*var) + "
        "(delta - mean)^2/(2*var), constant included, var floored at 1e-8",
        METRIC_GENES,
        CELL_AGG,
    ),
    MetricSpec(
        "aurc",
        "uncertainty",
        "lower",
        "area under the risk-coverage curve: cells sorted by predicted total variance "
        "(ascending), risk = MSE of the delta over the retained fraction, 20 coverage points",
        METRIC_GENES,
        CELL_AGG,
    ),
    MetricSpec(
        "ood_auroc",
        "uncertainty",
        "higher",
        "ROC AUC (sklearn roc_auc_score) of the per-cell mean predicted variance over the "
        "metric genes as a score for out-of-distribution membership. Labels: obs['is_ood'] of "
        "the test cells when the dataset has that column; otherwise the split's validation "
        "cells (held-out cells of training (pert_id, context) groups, restricted to the test "
        "cells' contexts when any are there: in-distribution, 0) vs "
        "its test cells (held-out contexts/perturbations/combinations: out-of-distribution, "
        "1), which needs the run to predict the validation cells (train baseline does; "
        "predictions.npz val_* arrays for eval). 0.5 = no separation; None without two "
        "classes, and None (flagged) when the predicted variance is the same for every cell: "
        "a constant score gives exactly 0.5 by construction. 'ood_auroc_labels' names the source",
        METRIC_GENES,
        CELL_AGG,
    ),
    # --- validation (model selection; never the test split) ---------------------------
    MetricSpec(
        "val_rmse_delta",
        "validation",
        "lower",
        "root mean squared error between the group-mean predicted delta and the group-mean true "
        "delta (X_pert - matched control) over the split's validation cells, per (pert_id, "
        "context) group; the leaderboard selects on it, never on test metrics",
        METRIC_GENES,
        "cell-weighted mean over validation groups",
    ),
    # --- collapse diagnostics --------------------------------------------------------
    MetricSpec(
        "delta_spread_ratio",
        "diagnostics",
        "higher",
        "sum over genes of the std across groups of predicted group-mean deltas (mean of the "
        "predicted delta) divided by the same for the true group-mean deltas (group mean "
        f"truth - {CTRL}); 1 = as diverse as truth, 0 = collapsed",
        METRIC_GENES,
        "per context over its groups; global = cell-weighted mean over contexts",
    ),
    MetricSpec(
        "mean_pairwise_cosine_pred",
        "diagnostics",
        "lower",
        "mean cosine between predicted group-mean deltas of distinct groups (compare with "
        "mean_pairwise_cosine_true; near 1 = collapsed)",
        METRIC_GENES,
        "per context over its groups; global = cell-weighted mean over contexts",
    ),
    MetricSpec(
        "deg_jaccard_pred",
        "diagnostics",
        "lower",
        "mean pairwise Jaccard across groups of the top-50 genes by |predicted group-mean "
        "delta| (compare with deg_jaccard_true; near 1 = collapsed)",
        METRIC_GENES,
        "per context over its groups; global = cell-weighted mean over contexts",
    ),
)


def _panel_functions() -> dict[str, Callable[..., Any]]:
    from perturbfm.eval.diagnostics import collapse_diagnostics
    from perturbfm.eval.metrics_de import de_panel
    from perturbfm.eval.metrics_perturbench import perturbench_group_metrics
    from perturbfm.eval.metrics_scperturbench import scperturbench_group_metrics
    from perturbfm.eval.robust import validation_scores
    from perturbfm.eval.uncertainty import summarise

    return {
        "scperturbench": scperturbench_group_metrics,
        "perturbench": perturbench_group_metrics,
        "celleval_de": de_panel,
        "uncertainty": summarise,
        "diagnostics": collapse_diagnostics,
        "validation": validation_scores,
    }


def metric_specs() -> tuple[MetricSpec, ...]:
    """Every registered metric with its compute function attached."""
    fns = _panel_functions()
    return tuple(replace(spec, compute=fns[spec.panel]) for spec in _SPECS)


def metric_registry() -> dict[str, dict[str, str]]:
    """Every registered metric as ``{name: {panel, direction, compares, genes, ..., compute}}``.

    ``compute`` is the dotted name of the function that computes it (JSON-ready).
    """
    out = {}
    for spec in metric_specs():
        fn = spec.compute
        out[spec.name] = {
            "name": spec.name,
            "panel": spec.panel,
            "direction": spec.direction,
            "compares": spec.compares,
            "genes": spec.genes,
            "aggregation": spec.aggregation,
            "reference": spec.reference,
            "compute": f"{fn.__module__}.{fn.__qualname__}" if fn is not None else "",
        }
    return out


def check_registered(panel: Panel, names: Iterable[str]) -> None:
    """Raise RuntimeError when a panel emits a key the registry does not describe (a bug)."""
    known = set(metric_names(panel))
    unknown = sorted(set(names) - known)
    if unknown:
        msg = f"panel {panel!r} emitted unregistered metric(s) {unknown}; add them to the registry"
        raise RuntimeError(msg)


def metric_names(panel: Panel) -> list[str]:
    """Names of the metrics of one panel, in registry order."""
    return [spec.name for spec in _SPECS if spec.panel == panel]
