"""Split specs and :func:`create_split`, a pure function of (dataset, spec, seed).

Rules shared by every spec
--------------------------
- **Held-out rows.** The spec names held-out (perturbation, context) groups; all their cells
  form the test set's perturbed rows.
- **Controls** are split 50/25/25 train/val/test within each context (seeded). The test
  quarter goes to test only in contexts that hold test perturbations; elsewhere it is left
  out (``unused_idx``) so the test set holds only contexts under test.
- **Validation**: a seeded ``val_fraction`` of the cells of every training (perturbation,
  context) group (rounded per group), plus the validation quarter of the controls.
- **OOD validation** (format 2): a seeded ``ood_val_fraction`` of the training units of the
  test axis's kind is moved out of training into ``ood_val_idx`` (perturbed cells only):
  combinations for ``combo``, perturbation ids for ``perturbation_ood``, (perturbation,
  context) pairs for ``covariate_transfer``, and for ``context_ood``/``loco`` the
  perturbations of one seeded training context (so validation, like test, asks for groups
  never seen in that context). At least one unit when there are two or more candidates,
  never all; drawn from a generator of its own so the test part does not depend on it.
- **Metric genes**: the top ``n_hvg`` genes by variance of ``X_pert`` over the training rows
  only (default ``min(n_genes, 2000)``), so the gene selection cannot leak test data and is
  part of the split's hash.

Specs
-----
``context_ood``  ``holdout_contexts``: every row of those contexts is test (controls split).
``loco``  fold ``i`` holds out the i-th context in sorted order (``context_ood`` of one).
``perturbation_ood``  a seeded ``holdout_fraction`` of the perturbation ids (``perturbations``:
  ``"all"`` or ``"singles"``) is held out in every context.
``combo``  a seeded ``holdout_fraction`` of the combinations (perturbations with two or more
  genes), optionally only within ``context``; ``single_holdout_fraction`` of the singles can
  be held out too. ``labels[combo] = number of its genes whose single perturbation has
  training rows in the context(s) where the combo is held out`` (0, 1 or 2 for pairs).
``covariate_transfer``  a seeded ``holdout_fraction`` of the perturbations seen in at least two
  contexts is held out in one of them (``context`` when given, else a seeded choice) and
  stays in training elsewhere. ``labels[pert] = [held-out context]``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from omicsrun.errors import check_seed
from perturbfm.data.dataset import PerturbDataset
from perturbfm.splits.split import Split

SpecName = Literal["context_ood", "loco", "perturbation_ood", "combo", "covariate_transfer"]
SPEC_NAMES: tuple[str, ...] = get_args(SpecName)
CONTROL_FRACTIONS = (0.5, 0.25, 0.25)
DEFAULT_MAX_HVG = 2000

_COMMON = {"n_hvg": None, "val_fraction": 0.1, "ood_val_fraction": 0.15}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "context_ood": {"holdout_contexts": None},
    "loco": {"fold": None, "n_folds": None, "holdout_contexts": None},  # the last two are derived
    "perturbation_ood": {"holdout_fraction": 0.2, "perturbations": "all"},
    "combo": {"holdout_fraction": 0.5, "context": None, "single_holdout_fraction": 0.0},
    "covariate_transfer": {"holdout_fraction": 0.3, "context": None},
}
# Filled in by resolve_spec (kept in the resolved spec, so it can be passed back in).
_DERIVED: dict[str, tuple[str, ...]] = {"loco": ("n_folds", "holdout_contexts")}


def spec_parameters(name: str) -> list[str]:
    """Parameters a user may set for spec ``name``, sorted (its own plus ``n_hvg``, ``val_fraction``)."""
    if name not in SPEC_NAMES:
        msg = f"unknown split spec {name!r}; choose one of {list(SPEC_NAMES)}"
        raise InputError(msg)
    derived = _DERIVED.get(name, ())
    return sorted(k for k in {**_DEFAULTS[name], **_COMMON} if k not in derived)


def _fraction(spec: dict[str, Any], key: str, *, allow_zero: bool = False) -> float:
    value = spec[key]
    try:
        value = float(value)
    except (TypeError, ValueError):
        msg = f"{key} must be a number in (0, 1); found {value!r}"
        raise InputError(msg) from None
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        msg = f"{key} must be in {'[0' if allow_zero else '(0'}, 1); found {value}"
        raise InputError(msg)
    return value


def resolve_spec(spec: dict[str, Any] | str, ds: PerturbDataset) -> dict[str, Any]:
    """Validate ``spec`` against ``ds`` and fill in every default (the form that is hashed).

    Raises
    ------
    InputError
        Unknown spec name or parameter, or a value the dataset cannot satisfy.
    """
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.get("name")
    if name not in SPEC_NAMES:
        msg = f"unknown split spec {name!r}; choose one of {list(SPEC_NAMES)}"
        raise InputError(msg)
    allowed = {"name", *_COMMON, *_DEFAULTS[name]}
    extra = sorted(set(spec) - allowed)
    if extra:
        msg = (
            f"spec {name!r} takes no parameter {extra[0]!r}; its parameters are {sorted(allowed - {'name'})}"
        )
        raise InputError(msg)
    out = {"name": name, **_COMMON, **_DEFAULTS[name]}
    out.update({k: v for k, v in spec.items() if v is not None})
    given_derived = {k: out[k] for k in _DERIVED.get(name, ()) if out[k] is not None}
    contexts = sorted(ds.obs["context_id"].unique())
    if out["n_hvg"] is None:
        out["n_hvg"] = min(ds.n_genes, DEFAULT_MAX_HVG)
    if not (isinstance(out["n_hvg"], (int, np.integer)) and 1 <= out["n_hvg"] <= ds.n_genes):
        msg = f"n_hvg must be an integer in [1, {ds.n_genes}] (the number of genes); found {out['n_hvg']!r}"
        raise InputError(msg)
    out["n_hvg"] = int(out["n_hvg"])
    out["val_fraction"] = _fraction(out, "val_fraction", allow_zero=True)
    out["ood_val_fraction"] = _fraction(out, "ood_val_fraction", allow_zero=True)
    if name == "loco":
        fold = out["fold"]
        if not isinstance(fold, (int, np.integer)) or not 0 <= fold < len(contexts):
            msg = (
                f"loco needs a fold in [0, {len(contexts) - 1}] (one per context {contexts}); found {fold!r}"
            )
            raise InputError(msg)
        out["fold"] = int(fold)
        out["n_folds"] = len(contexts)
        out["holdout_contexts"] = [contexts[fold]]
        wrong = [k for k, v in given_derived.items() if v != out[k]]
        if wrong:
            msg = (
                f"loco derives {wrong[0]} from fold and the dataset ({out[wrong[0]]!r}); "
                f"found {given_derived[wrong[0]]!r} - give only fold"
            )
            raise InputError(msg)
    if name in {"context_ood", "loco"}:
        held = out.get("holdout_contexts")
        if not held:
            msg = f"context_ood needs at least one holdout context; contexts are {contexts}"
            raise InputError(msg)
        held = sorted({str(c) for c in ([held] if isinstance(held, str) else held)})
        unknown = [c for c in held if c not in contexts]
        if unknown:
            msg = f"holdout context {unknown[0]!r} is not in the dataset; contexts are {contexts}"
            raise InputError(msg)
        if len(held) == len(contexts):
            msg = f"cannot hold out every context {contexts}; training needs at least one"
            raise InputError(msg)
        out["holdout_contexts"] = held
    if "holdout_fraction" in out:
        out["holdout_fraction"] = _fraction(out, "holdout_fraction")
    if name == "combo":
        out["single_holdout_fraction"] = _fraction(out, "single_holdout_fraction", allow_zero=True)
    if name == "perturbation_ood" and out["perturbations"] not in ("all", "singles"):
        msg = f"perturbations must be 'all' or 'singles'; found {out['perturbations']!r}"
        raise InputError(msg)
    if out.get("context") is not None and str(out["context"]) not in contexts:
        msg = f"context {out['context']!r} is not in the dataset; contexts are {contexts}"
        raise InputError(msg)
    return out


def _choose(rng: np.random.Generator, items: list[str], fraction: float) -> list[str]:
    # At least one, never all: something must stay in training.
    if not items:
        return []
    n_pick = min(max(1, round(fraction * len(items))), max(len(items) - 1, 1))
    return sorted(np.asarray(items, dtype=object)[rng.permutation(len(items))[:n_pick]].tolist())


def _isin(values: np.ndarray, items: Any) -> np.ndarray:
    # np.isin on object arrays compares every value with each item in turn; this hashes.
    return np.asarray(pd.Index(values).isin(list(items)), dtype=bool)


def _within_group_rank(rng: np.random.Generator, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random rank of each row within its group, and its group's size."""
    key = np.asarray(rng.random(codes.shape[0]))
    order = np.lexsort((key, codes))
    counts = np.bincount(codes, minlength=int(codes.max(initial=-1)) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(codes.shape[0], dtype=np.int64)
    rank[order] = np.arange(codes.shape[0]) - starts[codes[order]]
    return rank, counts[codes]


def _heldout_groups(
    spec: dict[str, Any], obs: pd.DataFrame, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, list[str]], dict[str, Any]]:
    """Boolean test mask over rows (perturbed rows only), ood_axes and labels."""
    pert = obs["pert_id"].to_numpy(dtype=object)
    ctx = obs["context_id"].to_numpy(dtype=object)
    ctrl = obs["is_control"].to_numpy(dtype=bool)
    n_genes_per = obs["pert_genes"].map(len).to_numpy()
    name = spec["name"]
    perts = obs.loc[~ctrl, ["pert_id", "context_id"]].drop_duplicates()
    if name in {"context_ood", "loco"}:
        test = ~ctrl & _isin(ctx, spec["holdout_contexts"])
        labels = {c: int((np.asarray(ctx) == c)[test].sum()) for c in spec["holdout_contexts"]}
        return test, {"context": list(spec["holdout_contexts"])}, labels
    if name == "perturbation_ood":
        kinds = obs.loc[~ctrl].groupby("pert_id", sort=True)["pert_genes"].first().map(len)
        kept = kinds.index[kinds == 1] if spec["perturbations"] == "singles" else kinds.index
        held = _choose(rng, sorted(map(str, kept)), spec["holdout_fraction"])
        test = ~ctrl & _isin(pert, held)
        n_test = pd.Series(pert[test]).value_counts()
        labels = {p: int(n_test.get(p, 0)) for p in held}
        return test, {"perturbation": held}, labels
    if name == "combo":
        scope = ~ctrl if spec["context"] is None else ~ctrl & (ctx == spec["context"])
        combos = sorted(map(str, pd.unique(pert[scope & (n_genes_per >= 2)])))
        if not combos:
            where = f" in context {spec['context']!r}" if spec["context"] is not None else ""
            msg = f"combo split needs perturbations with two or more genes{where}; found none"
            raise InputError(msg)
        held = _choose(rng, combos, spec["holdout_fraction"])
        singles_held: list[str] = []
        if spec["single_holdout_fraction"] > 0:
            singles = sorted(map(str, pd.unique(pert[scope & (n_genes_per == 1)])))
            singles_held = _choose(rng, singles, spec["single_holdout_fraction"])
        test = scope & _isin(pert, held + singles_held)
        # Single perturbations with training rows, per context; held combos' test contexts.
        seen = ~ctrl & ~test & (n_genes_per == 1)
        singles_in = {c: set(g) for c, g in pd.Series(pert[seen]).groupby(ctx[seen])}
        held_rows = test & _isin(pert, held)
        combo_ctx = pd.Series(ctx[held_rows]).groupby(pert[held_rows]).unique()
        first = ~obs["pert_id"].duplicated().to_numpy()
        genes_of = dict(zip(pert[first], obs["pert_genes"].to_numpy()[first], strict=True))
        seen_counts: dict[str, Any] = {}
        for combo in held:
            seen_perts = set().union(*(singles_in.get(c, set()) for c in combo_ctx[combo]))
            seen_counts[combo] = int(sum(g in seen_perts for g in genes_of[combo]))
        axes = {"combination": held}
        if singles_held:
            axes["perturbation"] = singles_held
        return test, axes, seen_counts
    # covariate_transfer
    n_ctx = perts.groupby("pert_id")["context_id"].nunique()
    multi = [str(p) for p in n_ctx.index[n_ctx >= 2]]
    if spec["context"] is not None:
        in_ctx = set(perts.loc[perts["context_id"] == spec["context"], "pert_id"])
        multi = [p for p in multi if p in in_ctx]
    cand = sorted(multi)
    if not cand:
        msg = "covariate_transfer needs perturbations seen in at least two contexts; found none"
        raise InputError(msg)
    held = _choose(rng, cand, spec["holdout_fraction"])
    contexts_of = {p: sorted(c) for p, c in perts.groupby("pert_id")["context_id"]}
    transfer: dict[str, list[str]] = {}
    targets = []
    for p in held:
        options = contexts_of[p]
        target = spec["context"] if spec["context"] is not None else options[rng.integers(len(options))]
        transfer[p] = [str(target)]
        targets.append(target)
    test = pd.MultiIndex.from_arrays([pert, ctx]).isin(list(zip(held, targets, strict=True)))
    axes = {"context": sorted({v[0] for v in transfer.values()}), "perturbation": held}
    return test, axes, dict(transfer)


def _ood_val_rows(
    spec: dict[str, Any], obs: pd.DataFrame, test: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask of OOD-validation rows: held-out training units of the test axis's kind."""
    fraction = spec["ood_val_fraction"]
    pert = obs["pert_id"].to_numpy(dtype=object)
    ctx = obs["context_id"].to_numpy(dtype=object)
    ctrl = obs["is_control"].to_numpy(dtype=bool)
    n_genes_per = obs["pert_genes"].map(len).to_numpy()
    fit = ~ctrl & ~test
    none = np.zeros(len(obs), dtype=bool)
    if fraction == 0 or not fit.any():
        return none

    def pick(rows: np.ndarray) -> list[str]:
        cands = sorted(map(str, pd.unique(pert[rows])))
        return _choose(rng, cands, fraction) if len(cands) >= 2 else []

    name = spec["name"]
    if name in {"context_ood", "loco"}:
        contexts = sorted(map(str, pd.unique(ctx[fit])))
        chosen = contexts[int(rng.integers(len(contexts)))]
        rows = fit & (ctx == chosen)
        return rows & _isin(pert, pick(rows))
    if name == "perturbation_ood":
        rows = fit & (n_genes_per == 1) if spec["perturbations"] == "singles" else fit
        return rows & _isin(pert, pick(rows))
    if name == "combo":
        scope = fit if spec["context"] is None else fit & (ctx == spec["context"])
        rows = scope & (n_genes_per >= 2)
        return rows & _isin(pert, pick(rows))
    # covariate_transfer: (perturbation, context) pairs of perturbations trained in >= 2 contexts
    pairs = obs.loc[fit, ["pert_id", "context_id"]].drop_duplicates()
    n_ctx = pairs.groupby("pert_id")["context_id"].nunique()
    multi = n_ctx.index[n_ctx >= 2]
    held = pick(fit & _isin(pert, multi))
    chosen_pairs = []
    for p in held:
        options = sorted(pairs.loc[pairs["pert_id"] == p, "context_id"])
        chosen_pairs.append((p, options[int(rng.integers(len(options)))]))
    return fit & pd.MultiIndex.from_arrays([pert, ctx]).isin(chosen_pairs)


def _top_variance_genes(ds: PerturbDataset, rows: np.ndarray, n_top: int) -> np.ndarray:
    """Indices of the ``n_top`` genes of largest ``X_pert`` variance over ``rows``.

    Read in row blocks (sparse blocks stay sparse); float64 sums of values and squares.
    """
    n_genes = ds.n_genes
    total = np.zeros(n_genes)
    total_sq = np.zeros(n_genes)
    for _, _, block in ds.iter_rows(rows, "pert", sparse=ds.is_sparse):
        if sp.issparse(block):
            block = block.astype(np.float64)
            total += np.asarray(block.sum(axis=0)).ravel()
            total_sq += np.asarray(block.multiply(block).sum(axis=0)).ravel()
        else:
            block = np.asarray(block, dtype=np.float64)
            total += block.sum(axis=0)
            total_sq += np.square(block).sum(axis=0)
    mean = total / max(rows.size, 1)
    var = total_sq / max(rows.size, 1) - mean**2
    order = np.lexsort((np.arange(n_genes), -np.round(np.asarray(var), 12)))  # ties: lower index first
    return np.sort(order[:n_top]).astype(np.int64)


def create_split(ds: PerturbDataset, spec: dict[str, Any] | str, *, seed: int, data_hash: str) -> Split:
    """Build the split ``spec`` of ``ds``; equal inputs give an equal split and hash.

    Parameters
    ----------
    ds
        The dataset (n_cells rows).
    spec
        ``{"name": <one of SPEC_NAMES>, **parameters}`` (see the module docstring); missing
        parameters take their defaults, and the resolved spec is stored in the split.
    seed
        Seed of every random choice.
    data_hash
        :func:`perturbfm.data.artifact.dataset_hash` of the artifact ``ds`` was loaded from.

    Returns
    -------
    Split
        Disjoint sorted row indices (controls included), labels and training-only metric genes.

    Raises
    ------
    InputError
        Bad spec, or a split that would leave the training or the test set without
        perturbed cells.
    """
    if not isinstance(ds, PerturbDataset):
        msg = f"create_split expects a PerturbDataset; found {type(ds).__name__}"
        raise InputError(msg)
    seed = check_seed(seed)
    if not isinstance(data_hash, str) or not data_hash:
        msg = f"data_hash must be the dataset's hash string; found {data_hash!r}"
        raise InputError(msg)
    resolved = resolve_spec(spec, ds)
    rng = np.random.default_rng(seed)
    obs = ds.obs
    ctrl = obs["is_control"].to_numpy(dtype=bool)
    ctx_codes, _ = pd.factorize(obs["context_id"], sort=True)
    test, ood_axes, labels = _heldout_groups(resolved, obs, rng)
    if not test.any():
        msg = f"split {resolved['name']} holds out no perturbed cell; check its parameters"
        raise InputError(msg)
    if not (~ctrl & ~test).any():
        msg = f"split {resolved['name']} leaves no perturbed cell for training"
        raise InputError(msg)

    part = np.full(ds.n_obs, -1, dtype=np.int64)  # 0 train, 1 val, 2 test, 3 unused
    # Controls: 50/25/25 within each context.
    rank, size = _within_group_rank(rng, ctx_codes[ctrl])
    n_train = np.round(size * CONTROL_FRACTIONS[0])
    n_val = np.round(size * CONTROL_FRACTIONS[1])
    ctrl_part = np.where(rank < n_train, 0, np.where(rank < n_train + n_val, 1, 2))
    tested_ctx = np.zeros(int(ctx_codes.max()) + 1, dtype=bool)
    tested_ctx[np.unique(ctx_codes[test])] = True
    ctrl_part = np.where((ctrl_part == 2) & ~tested_ctx[ctx_codes[ctrl]], 3, ctrl_part)
    part[ctrl] = ctrl_part
    part[test] = 2
    ood_val = _ood_val_rows(resolved, obs, test, np.random.default_rng([seed, 2]))
    part[ood_val] = 4
    # Perturbed training rows: val_fraction of each (perturbation, context) group.
    fit_rows = ~ctrl & ~test & ~ood_val
    group_codes, _ = pd.factorize(obs.loc[fit_rows, "pert_id"] + "\x1f" + obs.loc[fit_rows, "context_id"])
    rank, size = _within_group_rank(rng, group_codes.astype(np.int64))
    part[fit_rows] = np.where(rank < np.round(size * resolved["val_fraction"]), 1, 0)

    train_idx = np.flatnonzero(part == 0)
    metric_genes = _top_variance_genes(ds, train_idx, resolved["n_hvg"])
    return Split(
        spec=resolved,
        seed=int(seed),
        data_hash=data_hash,
        train_idx=train_idx,
        val_idx=np.flatnonzero(part == 1),
        test_idx=np.flatnonzero(part == 2),
        unused_idx=np.flatnonzero(part == 3),
        ood_val_idx=np.flatnonzero(part == 4),
        ood_axes=ood_axes,
        labels=labels,
        metric_genes=metric_genes,
    )


def loco_specs(ds: PerturbDataset, **params: Any) -> list[dict[str, Any]]:
    """One ``loco`` spec per context (fold i holds out the i-th context in sorted order)."""
    n_ctx = ds.obs["context_id"].nunique()
    return [{"name": "loco", "fold": i, **params} for i in range(n_ctx)]
