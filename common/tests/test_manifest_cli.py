import os
import stat

import numpy as np
import pytest
import typer

from omicsrun import InputError
from omicsrun.atomic import output_dir, write_text
from omicsrun.cli import run_app
from omicsrun.hashing import sha256_json
from omicsrun.manifest import run_manifest


def test_run_manifest_records_config_seed_hash_and_real_versions():
    record = run_manifest(
        tool="omicsrun", config={"a": 1}, seed=7, data_hash="abc", extra={"split_hash": "s"}
    )
    assert record["config"] == {"a": 1} and record["seed"] == 7 and record["data_hash"] == "abc"
    assert record["split_hash"] == "s"
    assert record["versions"]["numpy"] == np.__version__  # read another way: the module itself
    assert record["versions"]["omicsrun"] is not None
    # a manifest is plain JSON: it hashes
    assert len(sha256_json(record)) == 64


def _app():
    app = typer.Typer(add_completion=False)

    @app.command()
    def go(kind: str) -> None:
        if kind == "input":
            raise InputError("expected a folder;\n found a file")
        if kind == "bug":
            raise RuntimeError("a bug")

    return app


def test_run_app_turns_input_error_into_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        run_app(_app(), "tool", ["input"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == "tool: error: expected a folder; found a file\n"
    with pytest.raises(RuntimeError, match="a bug"):  # bugs keep their traceback
        run_app(_app(), "tool", ["bug"])


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        with output_dir(tmp_path / "run") as tmp:
            (tmp / "f").write_text("y")
        assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755
    finally:
        os.umask(mask)


def test_check_seed():
    from omicsrun.errors import check_seed

    assert check_seed(3) == 3 and check_seed(np.int64(4)) == 4 and type(check_seed(np.int64(4))) is int
    for bad in (-1, True, 1.5, "2", None):
        with pytest.raises(InputError, match="seed must be a non-negative integer"):
            check_seed(bad)
