"""VAE attributions end to end on a real (tiny) ``--backend vae`` fit read back by ``load_vae``."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from isograph.backends.vae import load_vae  # noqa: E402
from isograph.explain import ExplainConfig, explain_module  # noqa: E402
from isograph.explain.attribution import integrated_gradients  # noqa: E402
from isograph.explain.core import read_fit_tables  # noqa: E402
from isograph.explain.inputs import features_from_bundle  # noqa: E402
from isograph.fit import fit_bundle, write_fit  # noqa: E402
from isograph.fixtures import make_fixture  # noqa: E402

TINY = {
    "vae.progress": "false",
    "vae.threads": "1",
    "vae.max_epochs": "40",
    "vae.warmup_epochs": "10",
    "vae.latent_dim": "6",
    "vae.hidden_dim": "32",
}


@pytest.mark.slow
def test_vae_attribution_and_integrated_gradients_on_a_real_fit(tmp_path):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bundle = make_fixture("core_v1", "standard", seed=0)
        fit_dir = write_fit(fit_bundle(bundle, backend="vae", seed=0, overrides=TINY), tmp_path / "fit")
        handle = load_vae(fit_dir)
        table, meta, gene_level = features_from_bundle(bundle, read_fit_tables(fit_dir)["manifest"])
        # explain's rebuilt gene-level features are exactly the matrix the VAE was trained on.
        assert set(map(str, handle.feature_ids)) <= set(gene_level.columns)
        module_id = next(iter(handle.module_latent_dims))
        config = ExplainConfig(vae_attribution=True, integrated_gradients=True, ig_n_steps=64, vae_step=1e-2)
        results = explain_module(
            fit_dir,
            table,
            meta,
            module_ids=[module_id],
            config=config,
            output_dir=tmp_path / "explain",
            gene_level_matrix=gene_level,
        )
        result = results[module_id]
        vae = result.vae_drivers
        ig = result.ig_attributions
        assert vae is not None and ig is not None
        members = set(result.gene_driver_table.loc[result.gene_driver_table["in_module"], "gene_id"])
        assert set(vae["gene_id"]) == members
        criteria = vae["passes_fdr"] & vae["passes_percentile"] & vae["sign_agrees"]
        assert (vae["high_confidence"] == criteria).all()
        assert vae["passes_percentile"].any()

        # decoded_delta is the decoder's derivative along the module's latent dimension at the
        # mean code, direction-corrected: check it against an autograd Jacobian of the network.
        dim = int(handle.module_latent_dims[module_id])
        x = gene_level.loc[result.eigengene.index, list(map(str, handle.feature_ids))].to_numpy(
            dtype=np.float64
        )
        xt = torch.as_tensor(x, dtype=torch.float32)
        with torch.no_grad():
            z = handle.encoder_mean(xt)
        r_latent = np.corrcoef(z[:, dim].numpy(), result.eigengene.to_numpy())[0, 1]
        np.testing.assert_allclose(ig["latent_eigengene_r"], r_latent, rtol=1e-4)
        sign = 1.0 if r_latent >= 0 else -1.0
        exact = torch.autograd.functional.jacobian(handle.decoder, z.mean(dim=0, keepdim=True))[0, :, 0, dim]
        exact_of = pd.Series(sign * exact.numpy(), index=list(map(str, handle.feature_ids)))
        np.testing.assert_allclose(
            vae["decoded_delta"],
            exact_of.reindex(vae["feature_id"]).to_numpy(),
            atol=2e-3 * max(1.0, exact_of.abs().max()),
        )
        assert len(ig) == len(handle.feature_ids)
        assert (ig["latent_dim"] == handle.module_latent_dims[module_id]).all()
        assert set(vae["feature_type"]) <= {"switch", "abundance"}
        assert (tmp_path / "explain" / module_id / "vae_drivers.parquet").is_file()
        assert (tmp_path / "explain" / module_id / "ig_attributions.parquet").is_file()

        # IG completeness on the real network: per sample, attributions sum to z_d(x) - z_d(0).
        attributions, _ = integrated_gradients(handle, x, dim, baseline="zero", n_steps=64)
        with torch.no_grad():
            diff = (
                handle.encoder_mean(xt)[:, dim] - handle.encoder_mean(torch.zeros_like(xt))[:, dim]
            ).numpy()
        np.testing.assert_allclose(attributions.sum(axis=1), diff, atol=1e-3 * max(1.0, np.abs(diff).max()))
        # The written IG scores are these attributions' sample means (up to the eigengene sign).
        mean = pd.Series(attributions.mean(axis=0), index=list(map(str, handle.feature_ids)))
        written = ig.set_index("feature_id")["ig_score"].reindex(mean.index)
        np.testing.assert_allclose(np.abs(written.to_numpy()), np.abs(mean.to_numpy()), rtol=1e-4, atol=1e-6)
    finally:
        torch.set_num_threads(previous)
