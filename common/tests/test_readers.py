import pytest

from omicsrun import InputError
from omicsrun.readers import read_json_object


def test_read_json_object(tmp_path):
    good = tmp_path / "a.json"
    good.write_text('{"x": [1, 2]}')
    assert read_json_object(good, what="manifest") == {"x": [1, 2]}
    with pytest.raises(InputError, match=r"manifest .*missing.json does not exist"):
        read_json_object(tmp_path / "missing.json", what="manifest")
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="is not valid JSON"):
        read_json_object(bad, what="manifest")
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="holds a list; expected a JSON object"):
        read_json_object(bad, what="manifest")


def test_load_npz_only_reads_the_named_keys(tmp_path):
    import numpy as np

    from omicsrun.readers import load_npz

    path = tmp_path / "p.npz"
    np.savez(path, mean=np.arange(6.0).reshape(2, 3), idx=np.array([4, 7]), var=np.ones((2, 3)))
    got = load_npz(path, what="predictions file", required=("mean", "idx"), only=("mean", "idx"))
    assert sorted(got) == ["idx", "mean"]
    np.testing.assert_array_equal(got["mean"], np.arange(6.0).reshape(2, 3))
    assert sorted(load_npz(path, what="predictions file")) == ["idx", "mean", "var"]
    with pytest.raises(InputError, match="no array under key 'x'"):
        load_npz(path, what="predictions file", required=("x",), only=("x",))
