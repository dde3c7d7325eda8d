"""The training loop: resume equals an uninterrupted run; early stopping keeps the best epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omicsrun import InputError
from perturbfm.models.neural.trainer import TrainConfig, train_module, validation_scores


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.log_var = torch.nn.Parameter(torch.zeros(2))

    def forward(self, batch):
        return self.lin(batch["x"]), torch.exp(self.log_var).expand(batch["x"].shape[0], -1)


def _data(seed: int, n: int = 64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]]) + 0.1 * rng.normal(size=(n, 2))).astype(
        np.float32
    )
    return {"x": x}, y


def _run(tmp=None, *, epochs, resume=False, seed=0):
    torch.manual_seed(seed)
    module = _Linear()
    inputs, y = _data(0)
    v_inputs, vy = _data(1, 32)
    config = TrainConfig(epochs=epochs, batch_size=16, patience=100, monitor="nll")
    result = train_module(
        module,
        (inputs, y),
        (v_inputs, vy, np.zeros(32)),
        config=config,
        seed=seed,
        checkpoint_dir=tmp,
        resume=resume,
    )
    return module, result


def test_resume_continues_the_same_path(tmp_path):
    full, full_result = _run(epochs=6)
    _run(tmp_path, epochs=3)  # "crash" after 3 epochs: last.pt holds epoch 2
    resumed, result = _run(tmp_path, epochs=6, resume=True)
    assert result.resumed_from == 2
    assert [h["epoch"] for h in result.history] == list(range(6))
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert result.best_epoch == full_result.best_epoch


def test_best_epoch_weights_are_kept():
    module, result = _run(epochs=8)
    scores = [h["val_nll"] for h in result.history]
    assert result.best_epoch == int(np.argmin(scores))
    assert result.best_score == pytest.approx(min(scores))
    # the returned module holds that epoch's weights
    from perturbfm.models.neural.trainer import predict_module

    v_inputs, vy = _data(1, 32)
    mean, var = predict_module(module, v_inputs)
    assert validation_scores(mean, var, vy, np.zeros(32))["nll"] == pytest.approx(result.best_score, rel=1e-5)


def test_validation_scores_against_direct_formulas():
    rng = np.random.default_rng(0)
    mean, target = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    var = rng.uniform(0.5, 2, size=(6, 5))
    groups = np.array(["a", "a", "b", "b", "b", "c"])
    got = validation_scores(mean, var, target, groups)
    from scipy.stats import norm, pearsonr

    assert got["nll"] == pytest.approx(-norm.logpdf(target, mean, np.sqrt(var)).mean())
    assert got["rmse"] == pytest.approx(np.sqrt(((mean - target) ** 2).mean()))
    pcc = [pearsonr(mean[groups == g].mean(0), target[groups == g].mean(0))[0] for g in "abc"]
    assert got["pcc_delta"] == pytest.approx(np.mean(pcc))


def test_bad_config_refused():
    with pytest.raises(InputError, match="monitor must be one of"):
        TrainConfig(monitor="loss")
    with pytest.raises(InputError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
