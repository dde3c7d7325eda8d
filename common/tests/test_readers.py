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
