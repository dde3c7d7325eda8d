"""The VAE's null gate (no torch needed): modules are kept only when supported factors explain them."""

import numpy as np
import pytest

from isograph.backends.vae.gate import support_gate


def _planted_plus_noise(seed):
    # 120 samples; features 0-59 share one factor (a real program), the other 540 are pure
    # noise. Labels: genes 0-59 module 0, noise genes 100-159 module 1 and 300-339 module 2
    # (what a decoder's correlated output makes of noise), the rest unassigned.
    rng = np.random.default_rng(seed)
    n, p = 120, 600
    x = rng.standard_normal((n, p))
    x[:, :60] += 0.8 * rng.standard_normal((n, 1))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    label = np.full(p, -1)
    label[:60], label[100:160], label[300:340] = 0, 1, 2
    return x, label


@pytest.mark.parametrize("seed", [0, 1])
def test_gate_keeps_the_explained_module_and_drops_noise_modules_even_when_a_factor_is_supported(seed):
    x, label = _planted_plus_noise(seed)
    gene = np.arange(x.shape[1])  # one feature per gene
    kept, summary = support_gate(x, label, gene, seed=0)
    # A factor is supported (the planted one), so a gate on the factor count alone, the
    # previous rule, kept the two noise modules as well.
    assert summary["n_factors"] >= 1
    assert (kept[:60] == 0).all()
    assert (kept[60:] == -1).all()
    assert summary["n_modules_dropped"] == 2
    fraction = summary["module_explained_fraction"]
    assert fraction[0] > 0.8 and max(fraction[1:]) < 0.1


def test_gate_renumbers_kept_modules_and_counts_features_per_gene():
    x, label = _planted_plus_noise(0)
    # the noise module first (id 0), the planted one second (id 1); two features per gene
    label = np.where(label == 0, 7, label)
    label = np.where(label == 1, 0, label)
    label = np.where(label == 7, 1, label)
    gene_label = label[::2]  # gene g holds features 2g and 2g + 1 (same module by construction)
    kept, summary = support_gate(x, gene_label, np.arange(600) // 2, seed=0)
    assert set(np.unique(kept)) == {-1, 0}  # the planted module, renumbered 1 -> 0
    assert (kept[:30] == 0).all() and (kept[30:] == -1).all()
    assert len(summary["module_explained_fraction"]) == 3


def test_gate_on_pure_noise_keeps_nothing():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 400))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    label = np.repeat(np.arange(4), 100)
    kept, summary = support_gate(x, label, np.arange(400), seed=0)
    assert (kept == -1).all() and summary["n_modules_dropped"] == 4
