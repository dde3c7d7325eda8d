"""Assemble every panel for one set of predictions.

Predictions live in delta space: ``mean`` and ``var`` have one row per entry of
``test_idx``; the predicted expression of a cell is its matched control
``X_control[i]`` plus ``mean``. Metrics are computed per (pert_id, context_id) group of
the non-control test cells (control rows of ``test_idx``, if any, are ignored) and then
aggregated with cell-count weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omicsrun import InputError
from omicsrun.validate import all_finite
from perturbfm.data.dataset import PerturbDataset
from perturbfm.eval import uncertainty as unc
from perturbfm.eval._groups import (
    Groups,
    aggregate,
    build_groups,
    to_json,
    weighted_mean,
)
from perturbfm.eval.diagnostics import collapse_diagnostics
from perturbfm.eval.metrics_de import de_panel
from perturbfm.eval.metrics_perturbench import perturbench_group_metrics
from perturbfm.eval.metrics_scperturbench import (
    N_DEGS,
    scperturbench_group_metrics,
    subsample_positions,
    top_k_by_abs,
    welch_t,
)
from perturbfm.eval.registry import check_registered, metric_registry
from perturbfm.eval.robust import disagreements, split_half_ceiling


def _as_index(name: str, value: object, n_rows: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        msg = f"{name} must be a 1-D integer array of row indices; found dtype {arr.dtype}, shape {arr.shape}"
        raise InputError(msg)
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_rows):
        msg = f"{name} must index rows 0..{n_rows - 1}; found values in [{arr.min()}, {arr.max()}]"
        raise InputError(msg)
    if np.unique(arr).size != arr.size:
        msg = f"{name} must not repeat rows; found {arr.size - np.unique(arr).size} duplicate(s)"
        raise InputError(msg)
    return arr


def validate_predictions(
    mean: object,
    var: object,
    idx: object,
    expected_idx: object,
    n_genes: int,
    *,
    part: str = "test",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check predictions against the rows they must cover; return float arrays.

    Parameters
    ----------
    mean, var
        Predicted delta mean and variance, each (n_test, n_genes); ``var`` may be None
        (a point prediction: the uncertainty panel is then marked absent).
    idx
        Dataset rows the predictions are for, (n_test,).
    expected_idx
        Rows they must be for (the split's test rows), same order.
    n_genes
        Number of genes of the dataset.
    part
        Which rows these are (``"test"`` or ``"validation"``), for the messages.

    Returns
    -------
    mean, var
        float32 arrays stay float32 (blockwise consumers sum in float64); others become
        float64. ``var`` is None when none was given.

    Raises
    ------
    InputError
        Wrong shape, index mismatch, NaN/inf in mean or var, or negative variance.
    """
    idx_arr = np.asarray(idx)
    exp = np.asarray(expected_idx)
    if not np.issubdtype(idx_arr.dtype, np.integer):  # floats would be truncated silently
        msg = f"{part} predictions idx must hold integers (row indices); found dtype {idx_arr.dtype}"
        raise InputError(msg)
    if idx_arr.ndim != 1:
        msg = f"predictions idx must be 1-D; found shape {idx_arr.shape}"
        raise InputError(msg)
    if idx_arr.shape != exp.shape:
        msg = f"{part} predictions cover {idx_arr.size} rows but the split's {part} set has {exp.size}"
        raise InputError(msg)
    if not np.array_equal(idx_arr.astype(np.int64, copy=False), exp.astype(np.int64, copy=False)):
        bad = int(np.flatnonzero(idx_arr != exp)[0])
        msg = (
            f"{part} predictions idx does not match the split's {part} rows (same order expected); "
            f"first difference at position {bad}: found {idx_arr[bad]}, expected {exp[bad]}"
        )
        raise InputError(msg)
    mean_arr = _numeric_matrix(f"{part} predictions mean", mean, (exp.size, n_genes))
    if var is None:
        return mean_arr, None
    var_arr = _numeric_matrix(f"{part} predictions var", var, (exp.size, n_genes))
    n_neg = int((var_arr < 0).sum()) if var_arr.size and var_arr.min() < 0 else 0
    if n_neg:
        msg = (
            f"{part} predictions var holds {n_neg} negative value(s) (min {var_arr.min():.3g}); "
            "variances must be >= 0"
        )
        raise InputError(msg)
    return mean_arr, var_arr


def _numeric_matrix(name: str, value: object, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != shape:
        msg = f"{name} must have shape {shape}; found {arr.shape}"
        raise InputError(msg)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        msg = f"{name} must be numeric; found dtype {arr.dtype}"
        raise InputError(msg)
    # float32 stays float32 (half the memory at scale); sums are taken in float64 blockwise.
    arr = arr.astype(np.float32 if arr.dtype == np.float32 else np.float64, copy=False)
    if all_finite(arr):  # one reduction; the bad entries are counted only for the message
        return arr
    n_bad = int((~np.isfinite(arr)).sum())
    if n_bad:
        msg = f"{name} holds {n_bad} NaN or infinite value(s); expected finite numbers"
        raise InputError(msg)
    return arr


def _gene_positions(ds: PerturbDataset, metric_genes: Sequence[str] | Sequence[int] | None) -> np.ndarray:
    if metric_genes is None:
        return np.arange(ds.n_genes)
    genes = list(metric_genes)
    if not genes:
        msg = "metric_genes is empty; give at least one gene or None for all genes"
        raise InputError(msg)
    if all(isinstance(g, (int, np.integer)) for g in genes):
        pos = np.asarray(genes, dtype=np.int64)
        if pos.min() < 0 or pos.max() >= ds.n_genes:
            msg = f"metric_genes positions must lie in 0..{ds.n_genes - 1}; found [{pos.min()}, {pos.max()}]"
            raise InputError(msg)
    else:
        lookup = {g: i for i, g in enumerate(ds.var)}
        missing = [str(g) for g in genes if str(g) not in lookup]
        if missing:
            msg = f"metric_genes has {len(missing)} gene(s) not in the dataset, e.g. {missing[:3]}"
            raise InputError(msg)
        pos = np.asarray([lookup[str(g)] for g in genes], dtype=np.int64)
    if np.unique(pos).size != pos.size:
        msg = "metric_genes must not repeat genes"
        raise InputError(msg)
    return pos


def _control_moments(
    ds: PerturbDataset, control_idx: np.ndarray, contexts: np.ndarray, genes: np.ndarray
) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sample variance and count of test controls per context (observed expression)."""
    if control_idx.size == 0:
        msg = "control_idx is empty; the test split must hold control cells of every context"
        raise InputError(msg)
    obs = ds.obs
    not_ctrl = ~obs["is_control"].to_numpy(dtype=bool)[control_idx]
    if not_ctrl.any():
        msg = f"control_idx must hold control rows only; {int(not_ctrl.sum())} are perturbed cells"
        raise InputError(msg)
    ctx = obs["context_id"].to_numpy()[control_idx]
    missing = sorted(set(contexts) - set(ctx))
    if missing:
        msg = (
            f"no test-split control cells for context(s) {missing[:5]}; "
            "every evaluated context needs controls"
        )
        raise InputError(msg)
    names = np.unique(contexts)
    keep = np.isin(ctx, names)
    rows, ctx = control_idx[keep], ctx[keep]
    code = np.searchsorted(names, ctx)
    counts = np.bincount(code, minlength=names.size)
    m, v, _ = ds.group_moments(rows, code, names.size, "pert", genes=genes)
    return {str(c): i for i, c in enumerate(names)}, m, v, counts


def evaluate_predictions(
    ds: PerturbDataset,
    *,
    test_idx: np.ndarray,
    control_idx: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray | None,
    metric_genes: Sequence[str] | Sequence[int] | None = None,
    ood_labels: np.ndarray | None = None,
    id_var: np.ndarray | None = None,
    pert_labels: dict[str, object] | None = None,
    seed: int = 0,
    full: bool = True,
    metrics: Sequence[str] | None = None,
) -> dict:
    """Every metric panel for predictions of the test split (or only the metrics asked for).

    Parameters
    ----------
    ds
        The dataset.
    test_idx
        Test rows, (n_test,). Control rows among them are ignored.
    control_idx
        The test split's control rows; per context their mean observed expression is the
        reference control.
    mean, var
        Predicted delta mean and variance, (n_test, n_genes), aligned with ``test_idx``.
        ``var`` None (a point prediction): the uncertainty panel is marked absent.
    metric_genes
        Genes (ids or column positions) the metrics use, e.g. the split's HVGs; all genes
        when None.
    ood_labels
        Optional booleans (n_test,), true for out-of-distribution cells. They take
        precedence over ``id_var``.
    id_var
        Optional predicted variances (n_id, n_genes) of in-distribution held-out cells
        (the split's validation cells, whose groups were seen in training). With it and no
        ``ood_labels``, ``ood_auroc`` separates these cells (label 0) from the test cells
        (label 1, out of distribution by the split's construction).
    pert_labels
        Optional label per perturbation id (e.g. a combo split's number of singles seen in
        training); every panel then also reports ``per_label`` aggregates (perturbations
        without a label are left out of them).
    seed
        Seed of the random tie-breaking in rank metrics.
    full
        False skips the per-cell distribution metrics (E-distance, Wasserstein, KL) and the
        data ceiling: the quick scoring used for the baselines of baseline-relative scores.
    metrics
        Registered metric names to compute (e.g. cell-eval's four: ``pearson_delta_celleval``,
        ``pds_l1``, ``mse_all``, ``mae_all``); None computes everything. Only the group moments
        and panels these need are computed; the output holds the panels with those keys
        (``metrics`` lists them), the others are None. Group-level metrics only: the
        per-cell distribution metrics, DE, uncertainty and ceiling need the full evaluation.

    Returns
    -------
    dict
        ``scperturbench`` and ``perturbench`` (each ``global`` / ``per_perturbation`` /
        ``per_context``), ``uncertainty``, ``diagnostics``, ``flags`` (degenerate numbers
        withheld, negative predicted expression), ``ceiling`` (split-half data ceiling),
        ``warnings`` (metric versions that disagree), ``registry``; JSON-ready (undefined
        values are None).
    """
    test_idx = _as_index("test_idx", test_idx, ds.n_obs)
    control_idx = _as_index("control_idx", control_idx, ds.n_obs)
    mean, var = validate_predictions(mean, var, test_idx, test_idx, ds.n_genes)
    if ood_labels is not None:
        ood_labels = np.asarray(ood_labels)
        if ood_labels.shape != test_idx.shape:
            msg = (
                f"ood_labels must have one entry per test row ({test_idx.size}); "
                f"found shape {ood_labels.shape}"
            )
            raise InputError(msg)
        ood_labels = ood_labels.astype(bool)
    if id_var is not None:
        id_var = np.asarray(id_var, dtype=np.float64)
        if id_var.ndim != 2 or id_var.shape[1] != ds.n_genes:
            msg = f"id_var must have shape (n_id, {ds.n_genes}); found {id_var.shape}"
            raise InputError(msg)
        if not np.isfinite(id_var).all() or (id_var < 0).any():
            msg = "id_var must hold finite, non-negative variances"
            raise InputError(msg)
    genes = _gene_positions(ds, metric_genes)
    groups = build_groups(ds.obs, test_idx)
    if groups.n_groups == 0:
        msg = "test_idx holds no perturbed (non-control) rows; nothing to evaluate"
        raise InputError(msg)
    ctx_index, c_mean, c_var, c_n = _control_moments(ds, control_idx, groups.context, genes)
    gctx = np.asarray([ctx_index[c] for c in groups.context])
    if metrics is not None:
        return _selected_metrics(
            ds, groups, genes, mean, metrics, gctx, (c_mean, c_var, c_n), seed, pert_labels
        )

    rows, pos = groups.rows, groups.pos
    moments = _GroupMoments.of(ds, groups, genes, mean)
    true_mean, true_var, pred_mean = moments.true_mean, moments.true_var, moments.pred_mean
    mctrl_mean = moments.mctrl_mean
    members = groups.members()

    def group_cells(g: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cells = members[g][subsample_positions(members[g].size)]
        r, p, gcols = rows[cells], pos[cells], genes[cols]
        true = np.asarray(ds.rows(r, "pert", genes=gcols), dtype=np.float64)
        pred = np.asarray(ds.rows(r, "control", genes=gcols), dtype=np.float64) + mean[p][:, gcols]
        return pred, true

    flags: dict[str, object] = {}
    ctrl = (c_mean, c_var, c_n)
    scpb = moments.scperturbench(groups, gctx, ctrl, group_cells=group_cells if full else None, flags=flags)
    check_registered("scperturbench", scpb)
    ptb = moments.perturbench(ds, genes, groups, gctx, c_mean, seed)
    check_registered("perturbench", ptb)
    ctx_of_ctrl = ds.obs["context_id"].to_numpy()[control_idx]
    ctx_names = {int(c): groups.context[int(np.flatnonzero(gctx == c)[0])] for c in np.unique(gctx)}

    def de_ctrl(c: int, cols: np.ndarray) -> np.ndarray:
        crow = control_idx[ctx_of_ctrl == ctx_names[c]]
        return np.asarray(ds.rows(crow, "pert", genes=genes[cols]), dtype=np.float64)

    def de_cells(g: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, p, gcols = rows[members[g]], pos[members[g]], genes[cols]
        true = np.asarray(ds.rows(r, "pert", genes=gcols), dtype=np.float64)
        pred = np.asarray(ds.rows(r, "control", genes=gcols), dtype=np.float64) + mean[np.ix_(p, gcols)]
        return pred, true

    de = de_panel(gctx, genes.size, de_cells, de_ctrl, flags) if full else {}
    check_registered("celleval_de", de)
    cell_stats, flags["negative_predicted_expression"] = _cell_pass(ds, groups, mean, var, genes)
    if var is None or cell_stats is None:
        uncertainty: dict = {"status": "absent", "reason": "the predictions carry no variance"}
    else:
        uncertainty = _uncertainty_panel(ds, groups, cell_stats, genes, ood_labels, id_var)
        id_cell = None if id_var is None else id_var[:, genes].mean(axis=1)
        uncertainty.update(_uncertainty_flags(cell_stats["var"] / genes.size, id_cell, uncertainty))
    out: dict[str, Any] = {
        "scperturbench": aggregate(scpb, groups, pert_labels),
        "perturbench": aggregate(ptb, groups, pert_labels),
        "celleval_de": aggregate(de, groups, pert_labels) if de else None,
        "uncertainty": uncertainty,
        # Predicted deltas are the model's own (group mean of ``mean``), so a model that
        # predicts one delta for all perturbations shows zero spread.
        "diagnostics": _diagnostics(groups, pred_mean - mctrl_mean, true_mean - c_mean[gctx], gctx),
        "flags": flags,
        "ceiling": (
            split_half_ceiling(
                groups.code,
                groups.n_groups,
                # CSR cells stay sparse (one sparse product per block)
                lambda a, b: ds.rows(rows[a:b], "pert", genes=genes, sparse=ds.is_sparse).astype(np.float64),
                gctx,
                c_mean[gctx],
                deg_cols=top_k_by_abs(
                    welch_t(
                        true_mean,
                        true_var,
                        groups.n_cells[:, None].astype(np.float64),
                        c_mean[gctx],
                        c_var[gctx],
                        c_n[gctx][:, None].astype(np.float64),
                    ),
                    N_DEGS,
                ),
                block=4 * ds.block_rows(genes.size),
            )
            if full
            else None
        ),
        "registry": metric_registry(),
    }
    out["warnings"] = disagreements(out)
    return out


# Metrics that need the per-cell subsample (not group moments alone).
_CELL_METRICS = ("edistance", "edistance_celleval", "wasserstein_1d", "kl_gauss_sym_log2")


def check_metric_selection(metrics: Sequence[str]) -> list[str]:
    """Validate a metric selection: registered group-level names of the selectable panels."""
    from perturbfm.eval.registry import metric_names

    panels = metric_names("scperturbench") + metric_names("perturbench")
    allowed = [m for m in panels if m not in _CELL_METRICS]
    names = [str(m).strip() for m in metrics if str(m).strip()]
    bad = [m for m in names if m not in allowed]
    if not names or bad:
        what = f"unknown or non-selectable metric(s) {bad}" if bad else "the metric selection names no metric"
        msg = (
            f"{what}; choose among {allowed} "
            "(the distribution, DE, uncertainty and ceiling panels need the full evaluation)"
        )
        raise InputError(msg)
    return list(dict.fromkeys(names))


@dataclass
class _GroupMoments:
    """Per-group moments the two group-level panels are computed from.

    ``true_*``: observed expression of the test cells; ``pred_*``: their matched control plus
    the predicted delta; ``mctrl_mean``: their matched controls alone (None when not asked
    for: only ``pearson_delta_own_control`` reads it). Variances are NaN when not asked for.
    """

    true_mean: np.ndarray
    true_var: np.ndarray
    pred_mean: np.ndarray
    pred_var: np.ndarray
    mctrl_mean: np.ndarray | None

    @classmethod
    def of(
        cls,
        ds: PerturbDataset,
        groups: Groups,
        genes: np.ndarray,
        mean: np.ndarray,
        *,
        with_var: bool = True,
        matched_controls: bool = True,
    ) -> _GroupMoments:
        """Blockwise from the stored cells (sparse sums on CSR data) and the predictions."""
        rows, code, n = groups.rows, groups.code, groups.n_groups
        true_mean, true_var, _ = ds.group_moments(rows, code, n, "pert", genes=genes, with_var=with_var)
        pred_mean, pred_var, _ = ds.group_moments(
            rows, code, n, "control", genes=genes, add=mean, add_rows=groups.pos, with_var=with_var
        )
        mctrl = (
            ds.group_moments(rows, code, n, "control", genes=genes, with_var=False)[0]
            if matched_controls
            else None
        )
        return cls(true_mean, true_var, pred_mean, pred_var, mctrl)

    def scperturbench(
        self,
        groups: Groups,
        gctx: np.ndarray,
        ctrl: tuple[np.ndarray, np.ndarray, np.ndarray],
        *,
        group_cells: Any = None,
        flags: dict[str, object] | None = None,
        only: set[str] | None = None,
    ) -> dict:
        """The scPerturBench panel per group (``group_cells`` for the per-cell metrics;
        every metric, or ``only`` these)."""
        c_mean, c_var, c_n = ctrl
        return scperturbench_group_metrics(
            true_mean=self.true_mean,
            pred_mean=self.pred_mean,
            true_var=self.true_var,
            pred_var=self.pred_var,
            ctrl_mean=c_mean[gctx],
            ctrl_var=c_var[gctx],
            ctrl_n=c_n[gctx],
            n_cells=groups.n_cells,
            group_cells=group_cells,
            context_code=gctx,
            flags=flags,
            only=only,
        )

    def perturbench(
        self,
        ds: PerturbDataset,
        genes: np.ndarray,
        groups: Groups,
        gctx: np.ndarray,
        c_mean: np.ndarray,
        seed: int,
        *,
        only: set[str] | None = None,
    ) -> dict:
        """The PerturBench panel per group (every metric, or ``only`` these)."""
        return perturbench_group_metrics(
            true_mean=self.true_mean,
            pred_mean=self.pred_mean,
            # Without matched controls no selected metric reads this argument.
            pred_ctrl_mean=self.mctrl_mean if self.mctrl_mean is not None else c_mean[gctx],
            ctrl_mean=c_mean[gctx],
            context_code=gctx,
            exclude=_perturbed_columns(ds, genes, groups.pert_genes),
            seed=seed,
            only=only,
        )


def _selected_metrics(
    ds: PerturbDataset,
    groups: Groups,
    genes: np.ndarray,
    mean: np.ndarray,
    metrics: Sequence[str],
    gctx: np.ndarray,
    ctrl: tuple[np.ndarray, np.ndarray, np.ndarray],
    seed: int,
    pert_labels: dict[str, object] | None,
) -> dict:
    """Only the requested group-level metrics: group means (no variances unless a metric needs
    them), then the panel functions, whose other outputs are dropped."""
    from perturbfm.eval.registry import metric_names

    names = check_metric_selection(metrics)
    sc_names = [m for m in names if m in metric_names("scperturbench")]
    pb_names = [m for m in names if m in metric_names("perturbench")]
    # DEG-restricted metrics rank genes by Welch t, which needs the group variances.
    need_var = any(
        m not in ("mse_all", "mae_all", "pcc_delta_all", "pcc_delta_centroid_all") for m in sc_names
    )
    moments = _GroupMoments.of(
        ds, groups, genes, mean, with_var=need_var, matched_controls="pearson_delta_own_control" in pb_names
    )
    out: dict[str, Any] = {p: None for p in ("scperturbench", "perturbench", "celleval_de", "uncertainty")}
    if sc_names:
        scpb = moments.scperturbench(groups, gctx, ctrl, only=set(sc_names))
        out["scperturbench"] = aggregate({k: scpb[k] for k in sc_names}, groups, pert_labels)
    if pb_names:
        ptb = moments.perturbench(ds, genes, groups, gctx, ctrl[0], seed, only=set(pb_names))
        out["perturbench"] = aggregate({k: ptb[k] for k in pb_names}, groups, pert_labels)
    out["metrics"] = names
    out["registry"] = {k: v for k, v in metric_registry().items() if k in names}
    return out


def _perturbed_columns(ds: Any, genes: np.ndarray, pert_genes: Any) -> list[np.ndarray]:
    """Per group, the metric columns of its perturbed genes (left out of PerturBench's rank metrics)."""
    gene_col = {ds.var[g]: i for i, g in enumerate(genes)}
    return [np.asarray([gene_col[x] for x in pg if x in gene_col], dtype=np.int64) for pg in pert_genes]


def _csr_coords(mat: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and value of every stored entry of a CSR matrix."""
    rows = np.repeat(np.arange(mat.shape[0]), np.diff(mat.indptr))
    return rows, mat.indices, mat.data


def _cell_pass(
    ds: PerturbDataset, groups: Groups, mean: np.ndarray, var: np.ndarray | None, genes: np.ndarray
) -> tuple[dict[str, np.ndarray] | None, dict]:
    """One blockwise pass over the test cells: per-cell uncertainty sums and negative predictions.

    Residual = true delta - predicted delta = X_pert - X_control - mean, built in place from
    the stored rows (CSR rows are scattered into the negated prediction block, never made
    dense); predicted expression X_control + mean is counted below zero from the prediction
    block and the control's stored entries. Returns the per-cell statistics of
    :class:`perturbfm.eval.uncertainty.CellStatistics` (None without ``var``) and the
    negative-expression count.

    Log-normalised expression cannot be negative; cell-eval refuses such files and
    ``perturbfm export`` clips them at 0 (and says so).
    """
    rows, pos = groups.rows, groups.pos
    all_genes = genes.size == ds.n_genes and bool(np.array_equal(genes, np.arange(ds.n_genes)))
    gsel = None if all_genes else genes
    dtype = unc.work_dtype(mean) if var is None else unc.work_dtype(mean, var)
    cells = unc.CellStatistics(genes.size, dtype) if var is not None else None
    parts: list[dict[str, np.ndarray]] = []
    n_neg = 0
    step = ds.block_rows(genes.size)
    for start in range(0, rows.size, step):
        r, p = rows[start : start + step], pos[start : start + step]
        block = np.asarray(mean[p] if gsel is None else mean[np.ix_(p, gsel)], dtype=dtype)
        if ds.is_sparse:
            ci, cj, cv = _csr_coords(ds.rows(r, "control", genes=gsel, sparse=True))
            at_ctrl = block[ci, cj]
            n_neg += int(np.count_nonzero(block < 0)) - int(np.count_nonzero(at_ctrl < 0))
            n_neg += int(np.count_nonzero(at_ctrl + cv.astype(dtype, copy=False) < 0))
        else:
            ctrl = np.asarray(ds.rows(r, "control", genes=gsel), dtype=dtype)
            n_neg += int(np.count_nonzero(ctrl + block < 0))
        if cells is None or var is None:
            continue
        np.negative(block, out=block)
        if ds.is_sparse:
            pi, pj, pv = _csr_coords(ds.rows(r, "pert", genes=gsel, sparse=True))
            block[pi, pj] += pv.astype(dtype, copy=False)
            block[ci, cj] -= cv.astype(dtype, copy=False)
        else:
            block += np.asarray(ds.rows(r, "delta", genes=gsel), dtype=dtype)
        v = np.asarray(var[p] if gsel is None else var[np.ix_(p, gsel)], dtype=dtype)
        parts.append(cells.block(block, v))
    n_values = int(rows.size * genes.size)
    negative = {"n": n_neg, "n_values": n_values, "fraction": n_neg / n_values if n_values else 0.0}
    if cells is None:
        return None, negative
    return {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}, negative


def _uncertainty_flags(per_cell: np.ndarray, id_per_cell: np.ndarray | None, panel: dict) -> dict:
    """Mark the uncertainty panel degenerate when the predicted variance carries no information.

    A variance that is the same for every cell gives an OOD AUROC of exactly 0.5 and
    risk-coverage / calibration curves that say nothing about the model's confidence; such
    numbers are withheld (``ood_auroc`` None) and the reason recorded.
    """
    against_val = str(panel.get("ood_auroc_labels") or "").startswith("validation")
    if id_per_cell is not None and id_per_cell.size and against_val:
        per_cell = np.concatenate([per_cell, id_per_cell])
    flat_cells = bool(np.ptp(per_cell) <= 1e-12 * max(1.0, float(np.abs(per_cell).max(initial=0.0))))
    out: dict = {"status": "ok", "reason": None}
    if flat_cells:
        out["status"] = "degenerate"
        out["reason"] = (
            "the predicted variance is the same for every cell: OOD AUROC would be exactly 0.5 "
            "and the risk-coverage curve is flat by construction; coverage and NLL only check one "
            "global noise level"
        )
        out["ood_auroc_withheld"] = panel.get("ood_auroc")
        panel["ood_auroc"] = None
        for part in ("per_context", "per_perturbation"):
            for sub in panel.get(part, {}).values():
                sub["ood_auroc"] = None
    return out


def _uncertainty_panel(
    ds: PerturbDataset,
    groups: Groups,
    stats: dict[str, np.ndarray],
    genes: np.ndarray,
    ood_labels: np.ndarray | None,
    id_var: np.ndarray | None = None,
) -> dict:
    """The uncertainty panel from the per-cell sums of :func:`_cell_pass` (cells in ``groups`` order)."""
    g = genes.size
    labels = None if ood_labels is None else ood_labels[groups.pos]
    score = stats["var"] / g
    if labels is not None:
        ood_source = "obs['is_ood'] of the test cells"
        ood_auroc = unc.ood_auroc(score, labels)
    elif id_var is not None and id_var.shape[0] > 0:
        ood_source = "validation cells (in-distribution, 0) vs test cells (out-of-distribution, 1)"
        id_score = id_var[:, genes].mean(axis=1)
        ood_auroc = unc.ood_auroc(
            np.concatenate([id_score, score]),
            np.concatenate([np.zeros(id_score.size, dtype=bool), np.ones(score.size, dtype=bool)]),
        )
    else:
        ood_source, ood_auroc = None, None

    def by(names: np.ndarray, cell_code: np.ndarray) -> dict:
        # subsets = distinct names (sorted), all summarised in one vectorised pass
        uniq, sub = np.unique(names[cell_code], return_inverse=True)
        sub = sub.ravel()
        n_cells = np.bincount(sub, minlength=uniq.size)
        # cells of subset i are order[bounds[i]:bounds[i + 1]] (one sort, no mask per subset)
        order = np.argsort(sub, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(n_cells)])
        out = {}
        for i, summary in enumerate(unc.subset_summaries(stats, sub, uniq.size, g)):
            cells = order[bounds[i] : bounds[i + 1]]
            summary["ood_auroc"] = None if labels is None else unc.ood_auroc(score[cells], labels[cells])
            summary["n_cells"] = int(n_cells[i])
            out[str(uniq[i])] = summary
        return out

    everything = unc.summarise(stats, g)
    return {
        "coverage": everything["coverage"],
        "nll": everything["nll"],
        "mse": everything["mse"],
        "mean_var": everything["mean_var"],
        "risk_coverage": unc.risk_coverage(stats["sq"], stats["var"], g),
        "ood_auroc": ood_auroc,
        "ood_auroc_labels": ood_source,
        "per_context": by(groups.context, groups.code),
        "per_perturbation": by(groups.pert, groups.code),
    }


def _diagnostics(groups: Groups, pred_delta: np.ndarray, true_delta: np.ndarray, gctx: np.ndarray) -> dict:
    per_context = {}
    weights = []
    for c in np.unique(gctx):
        sel = gctx == c
        name = str(groups.context[sel][0])
        per_context[name] = collapse_diagnostics(pred_delta[sel], true_delta[sel])
        weights.append(float(groups.n_cells[sel].sum()))
    w = np.asarray(weights)
    keys = next(iter(per_context.values())).keys()
    glob = {
        k: to_json(weighted_mean(np.asarray([d[k] for d in per_context.values()]), w))
        for k in keys
        if k != "n_groups"
    }
    glob["n_groups"] = int(groups.n_groups)
    glob["n_cells"] = int(groups.n_cells.sum())
    return {
        "global": glob,
        "per_context": {c: {k: to_json(v) for k, v in d.items()} for c, d in per_context.items()},
    }
