"""The point of issue 6: on the real macrophage study (6 donors x 4 conditions) the default fit
separates the interferon-gamma program from the Salmonella program, with the classical markers
of each in its own module and a module count the 24 samples support."""

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isograph.fit import fit_bundle
from isograph.io import import_count_table
from omicsrun.testing import require_shared

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

ORGDB = Path("/usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite")
IFNG = ["CXCL10", "GBP1", "IDO1", "STAT1", "IRF1", "CXCL9", "GBP5"]
SALMONELLA = ["IL1B", "IL6", "TNF", "CXCL8", "PTGS2", "NFKBIA", "CCL20", "IL1A"]
# Used only when the org.Hs.eg.db SQLite is not installed (GENCODE ids of the same symbols).
_FALLBACK = {
    "CXCL10": "ENSG00000169245", "GBP1": "ENSG00000117228", "IDO1": "ENSG00000131203",
    "STAT1": "ENSG00000115415", "IRF1": "ENSG00000125347", "CXCL9": "ENSG00000138755",
    "GBP5": "ENSG00000154451", "IL1B": "ENSG00000125538", "IL6": "ENSG00000136244",
    "TNF": "ENSG00000232810", "CXCL8": "ENSG00000169429", "PTGS2": "ENSG00000073756",
    "NFKBIA": "ENSG00000100906", "CCL20": "ENSG00000115009", "IL1A": "ENSG00000115008",
}  # fmt: skip


def _ensembl(symbols):
    if not ORGDB.is_file():
        return {s: [_FALLBACK[s]] for s in symbols}
    with sqlite3.connect(f"file:{ORGDB}?mode=ro", uri=True) as db:
        rows = db.execute(
            "select g.symbol, e.ensembl_id from gene_info g join ensembl e on g._id = e._id "
            f"where g.symbol in ({','.join('?' * len(symbols))})",
            list(symbols),
        ).fetchall()
    out: dict[str, list[str]] = {}
    for symbol, ensembl in rows:
        out.setdefault(symbol, []).append(ensembl)
    return out


@pytest.fixture(scope="module")
def macrophage_fit():
    folder = require_shared("macrophage_gencode29")
    bundle = import_count_table(
        folder / "macrophage_gencode29_tx_counts.tsv.gz",
        folder / "tx2gene_from_gencode27_rsem.tsv.gz",
        folder / "coldata.csv",
        lengths=folder / "macrophage_gencode29_tx_lengths.tsv.gz",
        traits=["condition_name"],
        covariates=["line_id"],
        min_count=10,
        min_samples=3,
        dataset_name="macrophage",
    )
    return bundle, fit_bundle(bundle, seed=0)


def _module_of(result, symbols):
    ids = _ensembl(symbols)
    modules = result.modules.assign(base=result.modules["gene_id"].str.split(".").str[0]).set_index("base")
    found = {}
    for symbol in symbols:
        hits = [modules.at[e, "module_id"] for e in ids.get(symbol, []) if e in modules.index]
        if hits:
            found[symbol] = hits[0]
    return found


def test_ifng_and_salmonella_programs_are_separate_modules(macrophage_fit):
    bundle, result = macrophage_fit
    n_modules = result.eigengenes.shape[1]
    assert 2 <= n_modules <= 10  # a null at n = 24 gives none (null_v1/null_n24)
    ifng = _module_of(result, IFNG)
    sal = _module_of(result, SALMONELLA)
    assert len(ifng) >= 6 and len(sal) >= 6
    ifng_module, n_ifng = pd.Series(ifng).value_counts().index[0], pd.Series(ifng).value_counts().iloc[0]
    assert n_ifng >= len(ifng) - 1  # the interferon markers share one module
    sal_modules = pd.Series(sal)
    assert (sal_modules != "unassigned").all()
    assert (sal_modules != ifng_module).mean() >= 0.85  # and the Salmonella markers are elsewhere

    # the IFNg module's eigengene separates IFNg-treated from untreated samples in both arms
    condition = bundle.samples["condition_name"].to_numpy()
    e = result.eigengenes[ifng_module].to_numpy()
    means = {c: e[condition == c].mean() for c in np.unique(condition)}
    ifng_effect = abs(means["IFNg"] - means["naive"]) + abs(means["IFNg_SL1344"] - means["SL1344"])
    sal_effect = abs(means["SL1344"] - means["naive"]) + abs(means["IFNg_SL1344"] - means["IFNg"])
    assert ifng_effect > 1.5 * sal_effect
