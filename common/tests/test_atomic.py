import json

import numpy as np
import pytest

from omicsrun import InputError
from omicsrun.atomic import check_output_dir, output_dir, write_json
from omicsrun.hashing import sha256_array, sha256_dir, sha256_json


def test_output_dir_commits_only_on_success(tmp_path):
    final = tmp_path / "run"
    with pytest.raises(RuntimeError), output_dir(final) as tmp:
        (tmp / "a.txt").write_text("partial")
        raise RuntimeError("boom")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []
    with output_dir(final) as tmp:
        (tmp / "a.txt").write_text("done")
    assert (final / "a.txt").read_text() == "done"


def test_output_dir_refuses_existing_unless_overwrite(tmp_path):
    final = tmp_path / "run"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(InputError, match="already holds results"):
        check_output_dir(final)
    with output_dir(final, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_write_json_nan_and_numpy(tmp_path):
    path = write_json(tmp_path / "x.json", {"b": np.float32(1.5), "a": float("nan"), "c": np.arange(3)})
    assert json.loads(path.read_text()) == {"a": None, "b": 1.5, "c": [0, 1, 2]}


def test_hashes_are_content_hashes(tmp_path):
    assert sha256_json({"a": 1, "b": [1, 2]}) == sha256_json({"b": [1, 2], "a": 1})
    x = np.arange(6, dtype=np.float32)
    assert sha256_array(x) != sha256_array(x.reshape(2, 3))
    assert sha256_array(x) != sha256_array(x.astype(np.float64))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("1")
    first = sha256_dir(tmp_path / "d")
    (tmp_path / "d" / "f").write_text("2")
    assert sha256_dir(tmp_path / "d") != first


def test_json_text_matches_rebuilding_every_value():
    """The fast path (dump as is, fall back only on NaN/inf) writes exactly what replacing NaN
    in a rebuilt copy of every value writes, for any nesting of JSON values and numpy scalars."""
    import json

    import numpy as np
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from omicsrun.atomic import _json_default, _nan_to_none, json_text

    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.floats(allow_nan=True, width=32).map(np.float64)
        | st.text(max_size=5)
    )
    values = st.recursive(
        scalars,
        lambda kids: (
            st.lists(kids, max_size=4)
            | st.tuples(kids, kids)
            | st.dictionaries(st.text(max_size=4), kids, max_size=4)
        ),
        max_leaves=20,
    )

    @settings(max_examples=300, deadline=None)
    @given(values, st.sampled_from([None, 2]), st.sampled_from([None, (",", ":")]))
    def check(obj, indent, separators):
        slow = json.dumps(
            _nan_to_none(obj), sort_keys=True, default=_json_default, indent=indent, separators=separators
        )
        assert json_text(obj, indent=indent, separators=separators) == slow

    check()
