"""The devel splits tracked in the repository's splits/ folder stay reproducible.

Re-importing devel.h5ad with the documented defaults and re-creating each split must give
byte-for-byte the same content hash as the frozen file, and the frozen file must verify
against the freshly imported data. A change in the import, pairing or split code that would
silently change published numbers fails here.
"""

from pathlib import Path

from omicsrun.testing import REPO_ROOT, require_shared
from perturbfm.data.artifact import dataset_hash, save_dataset
from perturbfm.data.h5ad import import_h5ad
from perturbfm.splits import SplitStore, create_split

TRACKED = {
    "0b8c47374bbb8b702e37b06947bc30b6ad1a1a2c34b4e15bfe1f123cf99bd71b": {"name": "combo", "context": "k562"},
    "20a5df4836f58af633e7ce92a862d6f2700d7456dee07c277055a09decd032a0": {
        "name": "context_ood",
        "holdout_contexts": ["U87MG"],
    },
}


def test_tracked_devel_splits_reproduce(tmp_path: Path):
    path = require_shared("perturbench_devel/devel.h5ad")
    ds = import_h5ad(path, pert_key="perturbation", context_key="cell_type", control_label="control")
    data_hash = dataset_hash(save_dataset(ds, tmp_path / "devel"))
    store = SplitStore(root=REPO_ROOT / "splits")
    for frozen_hash, spec in TRACKED.items():
        frozen = store.load(frozen_hash, data_hash=data_hash)  # verifies content and data hash
        again = create_split(ds, spec, seed=0, data_hash=data_hash)
        assert again.frozen_hash == frozen_hash
        assert (again.test_idx == frozen.test_idx).all()
        assert frozen.format_version == 2
        assert frozen.ood_val_idx.size > 0
