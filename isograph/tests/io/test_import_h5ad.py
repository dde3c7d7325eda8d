"""Import from an AnnData file with transcripts as variables."""

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from isograph.io import import_h5ad
from omicsrun import InputError


def _adata(sparse=False, layer=False):
    rng = np.random.default_rng(1)
    counts = rng.poisson(15, size=(5, 6)).astype(np.float32)  # samples x transcripts
    counts[:, 5] = 0  # t6 never expressed
    obs = pd.DataFrame(
        {"group": pd.Categorical(["a", "b", "a", "b", "a"]), "age": [20.0, 30.0, 40.0, 50.0, 60.0]},
        index=[f"s{i}" for i in range(5)],
    )
    var = pd.DataFrame({"gene": ["g1", "g1", "g2", "g3", "g3", "g3"]}, index=[f"t{i}" for i in range(1, 7)])
    x = sp.csr_matrix(counts) if sparse else counts
    adata = anndata.AnnData(X=np.zeros_like(counts) if layer else x, obs=obs, var=var)
    if layer:
        adata.layers["counts"] = x
    return adata, counts


@pytest.mark.parametrize(("sparse", "layer"), [(False, False), (True, False), (True, True)])
def test_import_h5ad(tmp_path, sparse, layer):
    adata, counts = _adata(sparse=sparse, layer=layer)
    path = tmp_path / "tx.h5ad"
    adata.write_h5ad(path)
    bundle = import_h5ad(
        path,
        gene_key="gene",
        layer="counts" if layer else None,
        traits=["group"],
        covariates=["age"],
        min_count=1,
        min_samples=2,
    )
    assert list(bundle.samples["sample_id"]) == [f"s{i}" for i in range(5)]
    assert list(bundle.samples["group"]) == ["a", "b", "a", "b", "a"]
    assert list(bundle.transcripts["transcript_id"]) == ["t1", "t2", "t3", "t4", "t5"]
    np.testing.assert_array_equal(bundle.transcript_counts, counts[:, :5].T)
    np.testing.assert_allclose(bundle.gene_counts, [counts[:, :2].sum(1), counts[:, 2], counts[:, 3:].sum(1)])
    assert bundle.provenance["h5ad_matrix"] == ("layers['counts']" if layer else "X")
    assert bundle.provenance["n_transcripts_dropped_low_count"] == "1"


def test_unknown_gene_key_lists_var_columns(tmp_path):
    adata, _ = _adata()
    adata.write_h5ad(tmp_path / "tx.h5ad")
    with pytest.raises(InputError, match=r"no gene column 'gene_id'; columns are \['gene'\]"):
        import_h5ad(tmp_path / "tx.h5ad")


def test_unknown_layer(tmp_path):
    adata, _ = _adata()
    adata.write_h5ad(tmp_path / "tx.h5ad")
    with pytest.raises(InputError, match="no layer 'raw'"):
        import_h5ad(tmp_path / "tx.h5ad", gene_key="gene", layer="raw")


def test_not_an_h5ad(tmp_path):
    path = tmp_path / "tx.h5ad"
    path.write_text("hello")
    with pytest.raises(InputError, match=r"not a readable .h5ad"):
        import_h5ad(path, gene_key="gene")


def test_unknown_trait(tmp_path):
    adata, _ = _adata()
    adata.write_h5ad(tmp_path / "tx.h5ad")
    with pytest.raises(InputError, match=r"\['Dx'\].*columns are \['sample_id', 'group', 'age'\]"):
        import_h5ad(tmp_path / "tx.h5ad", gene_key="gene", traits=["Dx"])


def test_missing_h5ad(tmp_path):
    with pytest.raises(InputError, match=r"AnnData file .*absent.h5ad does not exist"):
        import_h5ad(tmp_path / "absent.h5ad")
