"""The one training loop of the PerturbFM torch models.

Gaussian negative log-likelihood on scaled deltas, AdamW, gradient-norm clipping, optional
mixed precision on CUDA, early stopping on a metric of the OOD-validation rows, the best
epoch's weights kept (and checkpointed), a progress bar, and resume from the last
checkpoint.

Early-stopping metric (``monitor``)
-----------------------------------
``rmse`` (default): root mean squared error of the predicted mean on the OOD-validation
cells (scaled deltas). It is a per-cell average, so it stays stable when the OOD-validation
part holds only a few held-out groups (a devel combo split has one or two held-out
combinations there), where a per-perturbation correlation would jump from epoch to epoch.
``nll`` (mean Gaussian NLL per entry) was the default until it was measured: the variance
head grows confident on training perturbations within a few epochs, so the NLL of held-out
cells rises while their mean error still falls, and stopping on it kept models of epoch
2-7 that had not learned the perturbation effects (synthetic graph regime, seed 0, v2 with
the true graph: PCC-delta-centroid 0.20 at best epoch 6 under ``nll`` against 0.76 at epoch
39 under ``rmse``; devel combo v2: best epoch 7). Variance calibration is the conformal
layer's job. ``pcc_delta`` (Pearson correlation over genes of the predicted and true mean
delta of each held-out (perturbation, context) group, averaged over groups) is the third
choice. Without OOD-validation rows the loop trains
every epoch and keeps the last one (recorded as ``monitor: "none"``).

Determinism: the seed fixes the initial weights (``torch.manual_seed`` before the module is
built, by the caller) and the batch order of epoch e (a numpy generator seeded with
``(seed, e)``), so a resumed run follows the same path as an uninterrupted one.
"""

from __future__ import annotations

import copy
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from omicsrun import InputError
from omicsrun.atomic import write_bytes

Monitor = Literal["nll", "rmse", "pcc_delta"]
MONITORS: tuple[str, ...] = ("nll", "rmse", "pcc_delta")
CHECKPOINT = "last.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of :func:`train_module`."""

    epochs: int = 60
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    patience: int = 10
    monitor: str = "rmse"
    device: str = "cpu"
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        if self.monitor not in MONITORS:
            msg = f"monitor must be one of {list(MONITORS)}; found {self.monitor!r}"
            raise InputError(msg)
        for key in ("epochs", "batch_size", "patience"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                msg = f"{key} must be a positive integer; found {value!r}"
                raise InputError(msg)
        for key in ("lr", "grad_clip"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                msg = f"{key} must be a positive number; found {value!r}"
                raise InputError(msg)


@dataclass
class TrainResult:
    """What the loop learned: best epoch, its score, per-epoch history, seconds per epoch."""

    best_epoch: int
    best_score: float | None
    monitor: str
    history: list[dict[str, float]] = field(default_factory=list)
    seconds_per_epoch: float = 0.0
    resumed_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when available)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        msg = f"device must be 'cpu', 'cuda' or 'auto'; found {name!r}"
        raise InputError(msg)
    if name.startswith("cuda") and not torch.cuda.is_available():
        msg = f"device {name!r} asked for, but torch sees no CUDA device here; use --param device=cpu"
        raise InputError(msg)
    return torch.device(name)


def gaussian_nll(mean: torch.Tensor, var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood per entry (constant included)."""
    return 0.5 * (torch.log(2 * math.pi * var) + (target - mean) ** 2 / var).mean()


def validation_scores(
    mean: np.ndarray, var: np.ndarray, target: np.ndarray, groups: np.ndarray
) -> dict[str, float]:
    """``nll``, ``rmse`` and ``pcc_delta`` of predictions on validation rows (scaled deltas)."""
    resid = target - mean
    nll = float(np.mean(0.5 * (np.log(2 * np.pi * var) + resid**2 / var)))
    rmse = float(np.sqrt(np.mean(resid**2)))
    uniq, codes = np.unique(groups, return_inverse=True)
    counts = np.bincount(codes, minlength=len(uniq))[:, None]
    pm = np.zeros((len(uniq), mean.shape[1]))
    tm = np.zeros_like(pm)
    np.add.at(pm, codes, mean)
    np.add.at(tm, codes, target)
    pm, tm = pm / counts, tm / counts
    pm -= pm.mean(axis=1, keepdims=True)
    tm -= tm.mean(axis=1, keepdims=True)
    denom = np.linalg.norm(pm, axis=1) * np.linalg.norm(tm, axis=1)
    pcc = np.divide((pm * tm).sum(axis=1), denom, out=np.zeros(len(uniq)), where=denom > 0)
    return {"nll": nll, "rmse": rmse, "pcc_delta": float(pcc.mean())}


def _better(score: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return score > best if monitor == "pcc_delta" else score < best


def _to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v).to(device) for k, v in batch.items()}


def predict_module(
    module: nn.Module,
    inputs: dict[str, np.ndarray],
    *,
    batch_size: int = 1024,
    device: torch.device | None = None,
    **forward_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance (n, G) of ``module`` on arrays ``inputs``, in batches, no gradients."""
    device = device or torch.device("cpu")
    module.eval()
    n = len(next(iter(inputs.values())))
    means, vars_ = [], []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = _to_device({k: v[start : start + batch_size] for k, v in inputs.items()}, device)
            mean, var = module(batch, **forward_kwargs)
            means.append(mean.float().cpu().numpy())
            vars_.append(var.float().cpu().numpy())
    if not means:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(means), np.concatenate(vars_)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def train_module(
    module: nn.Module,
    train: tuple[dict[str, np.ndarray], np.ndarray],
    val: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None,
    *,
    config: TrainConfig,
    seed: int,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``module`` in place; on return it holds the best epoch's weights.

    Parameters
    ----------
    module
        Network mapping a batch dict to (mean, var) of the scaled delta.
    train
        ``(inputs, target)``: input arrays (n_train, ...) and target (n_train, G).
    val
        ``(inputs, target, groups)`` of the OOD-validation rows (groups: one key per row,
        for ``pcc_delta``), or None.
    config
        Loop settings (:class:`TrainConfig`).
    seed
        Seeds the batch order of every epoch.
    checkpoint_dir
        Folder for ``last.pt`` (written after every epoch: weights, optimiser, best weights,
        history); None keeps everything in memory.
    resume
        Continue from ``checkpoint_dir/last.pt`` when it exists.
    progress
        Called with a one-line status after every epoch.
    """
    threads = torch.get_num_threads()
    if resolve_device(config.device).type == "cpu":
        # Small networks: one thread avoids oversubscription (ensemble members and ablation
        # runs get their parallelism from the Dask fan-out instead).
        torch.set_num_threads(1)
    try:
        return _train(
            module,
            train,
            val,
            config=config,
            seed=seed,
            ckpt_dir=checkpoint_dir,
            resume=resume,
            progress=progress,
        )
    finally:
        torch.set_num_threads(threads)


def _train(
    module: nn.Module,
    train: tuple[dict[str, np.ndarray], np.ndarray],
    val: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None,
    *,
    config: TrainConfig,
    seed: int,
    ckpt_dir: str | os.PathLike[str] | None,
    resume: bool,
    progress: Callable[[str], None] | None,
) -> TrainResult:
    from tqdm.auto import tqdm

    device = resolve_device(config.device)
    module.to(device)
    optimiser = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    use_amp = config.mixed_precision and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    inputs, target = train
    n = target.shape[0]
    monitor = config.monitor if val is not None and val[1].shape[0] else "none"
    result = TrainResult(best_epoch=-1, best_score=None, monitor=monitor)
    best_state = copy.deepcopy(module.state_dict())
    bad_epochs, start_epoch = 0, 0
    ckpt = Path(ckpt_dir) / CHECKPOINT if ckpt_dir is not None else None
    if resume and ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        module.load_state_dict(state["module"])
        optimiser.load_state_dict(state["optimiser"])
        best_state = state["best_module"]
        result = TrainResult(**{**state["result"], "resumed_from": state["epoch"]})
        bad_epochs, start_epoch = state["bad_epochs"], state["epoch"] + 1
    bar = tqdm(range(start_epoch, config.epochs), desc="epochs", leave=False, disable=None)
    seconds: list[float] = []
    for epoch in bar:
        if bad_epochs >= config.patience:
            break
        tic = time.perf_counter()
        module.train()
        order = np.random.default_rng([seed, epoch]).permutation(n)
        total = 0.0
        for start in range(0, n, config.batch_size):
            rows = order[start : start + config.batch_size]
            batch = _to_device({k: v[rows] for k, v in inputs.items()}, device)
            y = torch.from_numpy(target[rows]).to(device)
            with torch.autocast(device_type=device.type, enabled=use_amp):
                mean, var = module(batch)
                loss = gaussian_nll(mean.float(), var.float(), y)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)
            nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            scaler.step(optimiser)
            scaler.update()
            total += float(loss.detach()) * rows.size
        record = {"epoch": float(epoch), "train_nll": total / n}
        if monitor != "none" and val is not None:
            v_mean, v_var = predict_module(module, val[0], device=device)
            record.update(
                {f"val_{k}": s for k, s in validation_scores(v_mean, v_var, val[1], val[2]).items()}
            )
            score = record[f"val_{monitor}"]
            if _better(score, result.best_score, monitor):
                result.best_score, result.best_epoch, bad_epochs = score, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                bad_epochs += 1
        else:
            result.best_epoch, best_state = epoch, copy.deepcopy(module.state_dict())
        seconds.append(time.perf_counter() - tic)
        record["seconds"] = seconds[-1]
        result.history.append(record)
        if ckpt is not None:
            _save_checkpoint(
                ckpt,
                {
                    "epoch": epoch,
                    "module": module.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "best_module": best_state,
                    "bad_epochs": bad_epochs,
                    "result": result.to_dict(),
                },
            )
        status = f"epoch {epoch + 1}/{config.epochs} train_nll {record['train_nll']:.3f}"
        if monitor != "none":
            status += f" val_{monitor} {record[f'val_{monitor}']:.3f} (best epoch {result.best_epoch + 1})"
        bar.set_postfix_str(status)
        if progress is not None:
            progress(status)
    module.load_state_dict(best_state)
    module.to("cpu")
    all_seconds = [r["seconds"] for r in result.history]
    result.seconds_per_epoch = float(np.mean(all_seconds)) if all_seconds else 0.0
    return result
