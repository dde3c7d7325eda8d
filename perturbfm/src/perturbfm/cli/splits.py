"""Commands ``perturbfm splits create | list | show | verify``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from perturbfm.cli.app import app, comma_values

splits_app = typer.Typer(help="Immutable, hash-locked train/val/test splits.", no_args_is_help=True)
app.add_typer(splits_app, name="splits")

_SPLIT_DIR = typer.Option(None, "--split-dir", help="Split store (default $PERTURBFM_SPLIT_DIR or ./splits).")


@splits_app.command("create")
def create(
    data: Path = typer.Option(..., "--data", help="Dataset artifact folder."),
    spec: str = typer.Option(
        ..., "--spec", help="context_ood | loco | perturbation_ood | combo | covariate_transfer."
    ),
    holdout_context: list[str] | None = typer.Option(
        None, "--holdout-context", help="context_ood: repeatable."
    ),
    fold: int | None = typer.Option(None, "--fold", help="loco: one fold (default: every fold)."),
    holdout_fraction: float | None = typer.Option(None, "--holdout-fraction"),
    single_holdout_fraction: float | None = typer.Option(
        None, "--single-holdout-fraction", help="combo: also hold out this share of singles."
    ),
    context: str | None = typer.Option(None, "--context", help="combo / covariate_transfer: restrict to it."),
    singles_only: bool = typer.Option(
        False, "--singles-only", help="perturbation_ood: hold out singles only."
    ),
    val_fraction: float | None = typer.Option(None, "--val-fraction"),
    ood_val_fraction: float | None = typer.Option(
        None, "--ood-val-fraction", help="Share of training units moved to the OOD-validation part."
    ),
    n_hvg: int | None = typer.Option(None, "--n-hvg", help="Metric genes (default min(n_genes, 2000))."),
    seed: int = typer.Option(0, "--seed"),
    split_dir: Path | None = _SPLIT_DIR,
) -> None:
    """Create a split (or every loco fold), save it and print split_hash=<hash>."""
    from omicsrun import InputError
    from perturbfm.data.artifact import open_dataset
    from perturbfm.splits import SPEC_NAMES, SplitStore, create_split, loco_specs, spec_parameters

    if spec not in SPEC_NAMES:
        msg = f"unknown split spec {spec!r}; choose one of {list(SPEC_NAMES)}"
        raise InputError(msg)
    params = {
        "holdout_contexts": comma_values(holdout_context) or None,
        "holdout_fraction": holdout_fraction,
        "single_holdout_fraction": single_holdout_fraction,
        "context": context,
        "val_fraction": val_fraction,
        "ood_val_fraction": ood_val_fraction,
        "n_hvg": n_hvg,
        "perturbations": "singles" if singles_only else None,
        "fold": fold,
    }
    accepted = spec_parameters(spec)
    ignored = sorted(k for k, v in params.items() if v is not None and k not in accepted)
    if ignored:
        msg = f"spec {spec!r} does not take {ignored[0]!r}; it takes {accepted}"
        raise InputError(msg)
    params = {k: v for k, v in params.items() if v is not None}
    ds, data_hash = open_dataset(data)
    store = SplitStore(split_dir)
    specs = loco_specs(ds, **params) if spec == "loco" and fold is None else [{"name": spec, **params}]
    splits = [create_split(ds, s, seed=seed, data_hash=data_hash) for s in specs]  # all valid before saving
    for split in splits:
        store.save(split)
        print(
            f"{split.name}: train {split.train_idx.size}, val {split.val_idx.size}, "
            f"test {split.test_idx.size}, ood-val {split.ood_val_idx.size} rows; "
            f"ood {json.dumps(split.ood_axes)}",
            file=sys.stderr,
        )
        typer.echo(f"split_hash={split.frozen_hash}")


@splits_app.command("list")
def list_splits(split_dir: Path | None = _SPLIT_DIR) -> None:
    """List the splits in the store (hash, spec, sizes, data hash)."""
    from perturbfm.splits import SplitStore

    store = SplitStore(split_dir)
    rows = store.list()
    if not rows:
        typer.echo(f"no splits in {store.root}")
        return
    for row in rows:
        if not row["verified"]:
            typer.echo(f"{row['split_hash'][:16]}  INVALID  {row['error']}")
            continue
        typer.echo(
            f"{row['split_hash'][:16]}  {row['spec']['name']:<18} seed={row['seed']:<4} "
            f"train={row['n_train']:<6} val={row['n_val']:<6} test={row['n_test']:<6} "
            f"data={row['data_hash'][:12]}"
        )


@splits_app.command("show")
def show(
    split_hash: str = typer.Argument(..., help="Split hash or unique prefix."),
    split_dir: Path | None = _SPLIT_DIR,
) -> None:
    """Print a split's summary (spec, sizes, OOD axes, labels) as JSON."""
    from perturbfm.splits import SplitStore

    split = SplitStore(split_dir).load(split_hash)
    typer.echo(json.dumps({**split.summary(), "labels": split.labels}, indent=2))


@splits_app.command("verify")
def verify(
    split_hash: str = typer.Argument(..., help="Split hash or unique prefix."),
    data: Path | None = typer.Option(None, "--data", help="Also check the split belongs to this dataset."),
    split_dir: Path | None = _SPLIT_DIR,
) -> None:
    """Re-hash a split file (and check its dataset); exit 2 when it fails."""
    from perturbfm.data.artifact import dataset_hash
    from perturbfm.splits import SplitStore

    data_hash = dataset_hash(data) if data is not None else None
    split = SplitStore(split_dir).load(split_hash, data_hash=data_hash)
    typer.echo(f"ok split_hash={split.frozen_hash}" + (f" data_hash={data_hash}" if data_hash else ""))
