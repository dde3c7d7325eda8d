import numpy as np
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


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype="float32").reshape(3, 4),
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        np.arange(5, dtype=">i4"),
        np.zeros((0, 7)),
        np.array(3.5),
    ],
    ids=["float32", "fortran", "big-endian", "empty", "scalar"],
)
def test_load_npz_mmap_equals_numpy_load(tmp_path, array):
    import numpy as np

    from omicsrun.readers import load_npz

    stored, packed = tmp_path / "s.npz", tmp_path / "c.npz"
    np.savez(stored, a=array, b=np.arange(3))
    np.savez_compressed(packed, a=array, b=np.arange(3))
    for path in (stored, packed):
        got = load_npz(path, what="x", mmap=True)
        with np.load(path) as ref:
            for key in ("a", "b"):
                assert got[key].dtype == ref[key].dtype
                np.testing.assert_array_equal(got[key], ref[key])
    mapped = load_npz(stored, what="x", mmap=True)["a"]
    if array.size:  # a read-only view of the file's pages, not a copy
        assert not mapped.flags.owndata and not mapped.flags.writeable
    assert load_npz(packed, what="x", mmap=True)["a"].flags.writeable  # read into memory


def test_load_npz_mmap_refuses_object_and_truncated_members(tmp_path):
    import numpy as np

    from omicsrun.readers import load_npz

    obj = tmp_path / "o.npz"
    np.savez(obj, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(InputError, match="holds object arrays"):
        load_npz(obj, what="predictions file", mmap=True)
    # A member whose stored size is shorter than its header says: cut the payload, keep the
    # zip directory consistent by rewriting the archive with the short member.
    import zipfile

    good = tmp_path / "g.npz"
    np.savez(good, a=np.arange(100.0))
    raw = zipfile.ZipFile(good).read("a.npy")
    short = tmp_path / "t.npz"
    with zipfile.ZipFile(short, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.npy", raw[:-80])
    with pytest.raises(InputError, match="truncated"):
        load_npz(short, what="predictions file", mmap=True)
