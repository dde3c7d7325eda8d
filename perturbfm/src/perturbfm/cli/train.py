"""Command ``perturbfm train baseline``: fit a registered model on a split and write a run folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from perturbfm.cli.app import app

train_app = typer.Typer(help="Train a model on a frozen split; writes runs/<run_id>/.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` strings to a dict; values are read as JSON when they parse (numbers, bools, lists)."""
    from omicsrun import InputError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            msg = f"--param must look like key=value; found {item!r}"
            raise InputError(msg)
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


@train_app.command("baseline")
def baseline(
    data: Path = typer.Option(..., "--data", help="Dataset artifact folder."),
    split: str = typer.Option(..., "--split", help="Split hash (or a unique prefix)."),
    name: str = typer.Option(..., "--baseline", help="Baseline name (see `perturbfm train list`)."),
    param: list[str] | None = typer.Option(
        None, "--param", help="Model hyperparameter key=value (repeatable)."
    ),
    seed: int = typer.Option(0, "--seed"),
    runs_root: Path = typer.Option(Path("runs"), "--runs-root", help="Folder that receives the run folder."),
    split_dir: Path | None = typer.Option(
        None, "--split-dir", help="Split store (default $PERTURBFM_SPLIT_DIR or ./splits)."
    ),
) -> None:
    """Fit, predict the split's test cells, evaluate every panel; print run_dir=<folder>."""
    from rich.console import Console

    from perturbfm.runs import train_baseline

    # A transient spinner on a terminal; nothing on a pipe, so error output stays one line.
    with Console(stderr=True).status("perturbfm train: starting") as status:
        run_dir = train_baseline(
            data_dir=data,
            split_hash=split,
            baseline=name,
            params=parse_params(param),
            runs_root=runs_root,
            seed=seed,
            split_dir=split_dir,
            progress=lambda msg: status.update(f"perturbfm train: {msg}"),
        )
    typer.echo(f"run_dir={run_dir}")


def _model_command(model_name: str) -> None:
    def command(
        data: Path = typer.Option(..., "--data", help="Dataset artifact folder."),
        split: str = typer.Option(..., "--split", help="Split hash (or a unique prefix); format v2."),
        graph: list[str] | None = typer.Option(
            None, "--graph", help="Graph name in <data>/graphs/ or .npz path (repeatable)."
        ),
        param: list[str] | None = typer.Option(
            None, "--param", help="Hyperparameter key=value (repeatable)."
        ),
        epochs: int | None = typer.Option(None, "--epochs", help="Shorthand for --param epochs=N."),
        ensemble: int = typer.Option(1, "--ensemble", help="Deep-ensemble members K."),
        conformal: bool = typer.Option(
            True, "--conformal/--no-conformal", help="Split-conformal layer on the OOD-validation part."
        ),
        conformal_unit: str = typer.Option(
            "group",
            "--conformal-unit",
            help="Conformal calibration unit: group (each (perturbation, context) group weighs "
            "equally) | cell (every entry once).",
        ),
        seed: int = typer.Option(0, "--seed", help="Model seed (weights, batch order)."),
        eval_seed: int = typer.Option(0, "--eval-seed", help="Evaluation seed (tie-breaking)."),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of this config."),
        cluster: str = typer.Option("serial", "--cluster", help="serial | local | slurm | tcp://scheduler."),
        n_workers: int | None = typer.Option(None, "--n-workers"),
        runs_root: Path = typer.Option(Path("runs"), "--runs-root"),
        split_dir: Path | None = typer.Option(None, "--split-dir"),
    ) -> None:
        from rich.console import Console

        from perturbfm.runs import train_model

        params = parse_params(param)
        if epochs is not None:
            params["epochs"] = epochs
        with Console(stderr=True).status(f"perturbfm train {model_name}: starting") as status:
            run_dir = train_model(
                data_dir=data,
                split_hash=split,
                model=model_name,
                params=params,
                graphs=graph or [],
                n_members=ensemble,
                conformal=conformal,
                conformal_unit=conformal_unit,
                runs_root=runs_root,
                seed=seed,
                eval_seed=eval_seed,
                split_dir=split_dir,
                resume=resume,
                cluster=cluster,
                n_workers=n_workers,
                progress=lambda msg: status.update(f"perturbfm train {model_name}: {msg}"),
            )
        typer.echo(f"run_dir={run_dir}")

    command.__doc__ = (
        f"Train {model_name} (early stopping on the split's OOD-validation part; optional ensemble "
        "and conformal layer); print run_dir=<folder>."
    )
    train_app.command(model_name)(command)


for _version in range(4):
    _model_command(f"perturbfm-v{_version}")


@train_app.command("list")
def list_models() -> None:
    """Print the registered model names and their hyperparameters."""
    from perturbfm.models import available_models, get_model

    for model_name in available_models():
        typer.echo(f"{model_name}\t{json.dumps(get_model(model_name).get_params())}")
