import json

import numpy as np
import pytest

from omicsrun import InputError
from omicsrun.hashing import sha256_json
from perturbfm.data import make_synthetic
from perturbfm.splits import Split, SplitStore, create_split

HASH = "a" * 64


@pytest.fixture(scope="module")
def split():
    ds = make_synthetic(n_obs=300, n_genes=20, n_contexts=2, n_perts=5, seed=0)
    return create_split(ds, {"name": "context_ood", "holdout_contexts": ["C1"]}, seed=0, data_hash=HASH)


def test_save_load_round_trip(split, tmp_path):
    store = SplitStore(tmp_path)
    path = store.save(split)
    assert path.name == f"{split.frozen_hash}.json"
    assert split.frozen_hash == sha256_json(split.content())
    back = store.load(split.frozen_hash[:8], data_hash=HASH)
    assert back.frozen_hash == split.frozen_hash
    for name in ("train_idx", "val_idx", "test_idx", "unused_idx", "ood_val_idx", "metric_genes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(split, name))
    assert back.spec == split.spec and back.labels == split.labels and back.ood_axes == split.ood_axes
    before = path.stat().st_mtime_ns
    store.save(split)  # same content: no-op
    assert path.stat().st_mtime_ns == before
    assert [row["split_hash"] for row in store.list()] == [split.frozen_hash]
    with pytest.raises(ValueError, match="read-only"):
        back.train_idx[0] = 5


def test_env_var_sets_default_root(split, tmp_path, monkeypatch):
    monkeypatch.setenv("PERTURBFM_SPLIT_DIR", str(tmp_path / "store"))
    assert SplitStore().root == tmp_path / "store"
    SplitStore().save(split)
    assert (tmp_path / "store" / f"{split.frozen_hash}.json").is_file()
    monkeypatch.delenv("PERTURBFM_SPLIT_DIR")
    assert str(SplitStore().root) == "splits"


def test_tampered_file_is_refused(split, tmp_path):
    store = SplitStore(tmp_path)
    path = store.save(split)
    text = path.read_text()
    data = json.loads(text)
    data["test_idx"][0] = data["train_idx"][0] + 100000  # one index changed
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    with pytest.raises(InputError, match="fails verification"):
        store.load(split.frozen_hash)
    path.write_text(text.replace('"seed": 0', '"seed": 1'))
    with pytest.raises(InputError, match="fails verification"):
        store.load(split.frozen_hash)
    path.write_text(text[:-20])
    with pytest.raises(InputError, match="not valid JSON"):
        store.load(split.frozen_hash)
    # a different file under the name is never overwritten
    with pytest.raises(InputError, match="refusing to overwrite"):
        store.save(split)
    assert store.list()[0]["verified"] is False


def test_data_hash_mismatch_is_refused(split, tmp_path):
    store = SplitStore(tmp_path)
    store.save(split)
    with pytest.raises(InputError, match="was made for dataset aaaaaaaaaaaa"):
        store.load(split.frozen_hash, data_hash="b" * 64)


def test_unknown_and_ambiguous_prefixes(split, tmp_path):
    store = SplitStore(tmp_path)
    store.save(split)
    with pytest.raises(InputError, match="no split"):
        store.load("0000000")
    with pytest.raises(InputError, match="at least 4 hex"):
        store.load("ab")
    other = Split(
        **{
            **{k: getattr(split, k) for k in ("spec", "data_hash", "train_idx", "val_idx", "test_idx")},
            "seed": 99,
            "ood_axes": split.ood_axes,
            "labels": split.labels,
            "metric_genes": split.metric_genes,
            "unused_idx": split.unused_idx,
        }
    )
    # forge a second file sharing the first 4 characters to make the prefix ambiguous
    twin = tmp_path / f"{split.frozen_hash[:4]}{other.frozen_hash[4:]}.json"
    twin.write_text("{}")
    with pytest.raises(InputError, match="ambiguous"):
        store.load(split.frozen_hash[:4])
    assert store.load(split.frozen_hash[:12]).frozen_hash == split.frozen_hash


def test_split_rejects_overlap_and_bad_hash(split):
    with pytest.raises(InputError, match="overlap"):
        Split(
            spec=split.spec,
            seed=0,
            data_hash=HASH,
            train_idx=[1, 2],
            val_idx=[2],
            test_idx=[3],
            ood_axes={},
            labels={},
            metric_genes=[0],
        )
    data = split.to_dict()
    data["frozen_hash"] = "f" * 64
    with pytest.raises(InputError, match="recorded hash"):
        Split.from_dict(data)


def test_format_v1_file_still_loads_and_says_what_it_lacks(tmp_path, split):
    # A v1 record: no ood_val_idx, format_version 1; its own hash must still verify.
    from omicsrun.atomic import dumps_json
    from omicsrun.hashing import sha256_json

    content = {k: v for k, v in split.content().items() if k != "ood_val_idx"}
    content["format_version"] = 1
    content["train_idx"] = sorted(content["train_idx"] + split.ood_val_idx.tolist())
    digest = sha256_json(content)
    (tmp_path / f"{digest}.json").write_text(dumps_json({**content, "frozen_hash": digest}))
    old = SplitStore(root=tmp_path).load(digest)
    assert old.format_version == 1
    assert old.frozen_hash == digest
    assert old.ood_val_idx.size == 0
    with pytest.raises(InputError, match=r"format v1: it has no OOD-validation part, which early stopping"):
        old.require_ood_val("early stopping")
