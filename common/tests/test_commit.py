"""The output-commit mechanism: lock, build aside, swap in when complete, leftovers, checks."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omicsrun import InputError
from omicsrun.atomic import output_dir, write_text
from omicsrun.commit import (
    TargetBusyError,
    TargetExistsError,
    claim_unique_dir,
    commit_file,
    final_path,
    is_locked,
    leftovers,
)
from omicsrun.testing import another_writer


def _make_result(path: Path, text: str) -> None:
    with output_dir(path, overwrite=True) as tmp:
        write_text(tmp / "result.txt", text)


def test_failure_keeps_the_earlier_result_and_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    _make_result(target, "old")
    with pytest.raises(RuntimeError, match="boom"), output_dir(target, overwrite=True) as tmp:
        write_text(tmp / "result.txt", "new")
        write_text(tmp / "partial.txt", "half")
        raise RuntimeError("boom")
    assert (target / "result.txt").read_text() == "old"
    assert not (target / "partial.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp, no lock left


def test_old_result_stays_in_place_until_the_new_one_is_complete(tmp_path):
    target = tmp_path / "out"
    _make_result(target, "old")
    with output_dir(target, overwrite=True) as tmp:
        write_text(tmp / "result.txt", "new")
        assert (target / "result.txt").read_text() == "old"  # readers still see the old one
    assert (target / "result.txt").read_text() == "new"
    assert leftovers(target) == []


def test_existing_result_is_refused_without_overwrite(tmp_path):
    target = tmp_path / "out"
    _make_result(target, "old")
    with pytest.raises(TargetExistsError, match="already holds results"), output_dir(target):
        pass


def test_second_writer_is_refused_while_the_first_holds_the_target(tmp_path):
    target = tmp_path / "out"
    with output_dir(target) as tmp:
        assert is_locked(target)
        with pytest.raises(TargetBusyError, match=rf"pid {os.getpid()}"), output_dir(target, overwrite=True):
            pass
        write_text(tmp / "result.txt", "first")
    assert not is_locked(target)
    assert (target / "result.txt").read_text() == "first"


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_another_writer_holds_the_lock_and_leaves_the_target_as_it_was(tmp_path, kind):
    target = tmp_path / "out"
    if kind == "folder":
        _make_result(target, "old")
    else:
        target.write_text("old")
    before = sorted(p.name for p in tmp_path.iterdir())
    second = output_dir if kind == "folder" else commit_file
    with another_writer(target):
        assert is_locked(target)
        with pytest.raises(TargetBusyError, match="is writing"), second(target, overwrite=True):
            pass
    assert not is_locked(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (target / "result.txt" if kind == "folder" else target).read_text() == "old"


def test_nested_output_dir_on_a_build_folder_writes_into_it(tmp_path):
    target = tmp_path / "out"
    with output_dir(target) as build:
        with output_dir(build, overwrite=False) as inner:
            assert inner == build
            write_text(inner / "a.txt", "x")
        assert final_path(build / "a.txt") == target / "a.txt"
    assert (target / "a.txt").read_text() == "x"


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from omicsrun import InputError
    from omicsrun.atomic import output_dir, write_text
    target, name, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.001)
    try:
        with output_dir(target) as tmp:
            time.sleep(0.3)
            write_text(tmp / "writer.txt", name)
    except InputError as err:
        print(err, file=sys.stderr)
        sys.exit(2)
    """
)


def test_two_concurrent_writers_to_one_target_exactly_one_wins(tmp_path):
    target, go = tmp_path / "out", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target), name, str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    ]
    go.touch()
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "is writing" in loser or "already holds results" in loser
    winner = "AB"[[code for code, _ in results].index(0)]
    assert (target / "writer.txt").read_text() == winner
    assert leftovers(target) == []


def test_stale_temporary_folder_of_a_dead_run_is_removed_and_reported(tmp_path, caplog):
    target = tmp_path / "out"
    stale = tmp_path / ".out.999999-deadbeef.tmp"
    stale.mkdir()
    (stale / "half.parquet").write_text("x")
    other = tmp_path / ".out.v2.999999-deadbeef.tmp"  # another target's leftover: not ours
    other.mkdir()
    with caplog.at_level(logging.WARNING, logger="omicsrun"), output_dir(target) as tmp:
        write_text(tmp / "result.txt", "new")
    assert not stale.exists()
    assert other.exists()
    assert "removed stale temporary" in caplog.text


def test_result_moved_aside_by_a_killed_run_is_restored(tmp_path, caplog):
    target = tmp_path / "out"
    _make_result(target, "old")
    aside = tmp_path / ".out.999999-deadbeef.old"
    target.rename(aside)  # what a kill between the two renames of the fallback swap leaves
    with (
        caplog.at_level(logging.WARNING, logger="omicsrun"),
        pytest.raises(TargetExistsError),
        output_dir(target),
    ):
        pass
    assert (target / "result.txt").read_text() == "old"
    assert "restored" in caplog.text


@pytest.mark.parametrize("relation", ["same", "inside", "holds"])
def test_target_that_is_the_input_is_refused(tmp_path, relation):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    target = {"same": bundle, "inside": bundle / "fit", "holds": tmp_path}[relation]
    with pytest.raises(InputError, match="input"), output_dir(target, overwrite=True, inputs=[bundle]):
        pass
    assert (bundle / "manifest.json").read_text() == "{}"
    with (
        pytest.raises(InputError, match="input"),
        commit_file(bundle / "manifest.json", overwrite=True, inputs=[bundle]),
    ):
        pass


def test_path_under_a_file_is_one_input_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputError, match="is a file"), output_dir(blocker / "sub" / "out"):
        pass


@contextlib.contextmanager
def _tmpfs(tmp_path: Path, size: str, *, read_only: bool = False):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "mnt"
    mount.mkdir()
    opts = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_read_only_file_system_is_refused_before_work(tmp_path):
    with _tmpfs(tmp_path, "1m", read_only=True) as mount:
        ran = False
        with pytest.raises(InputError, match="read-only"), output_dir(mount / "out"):
            ran = True
        assert not ran


def test_full_disk_is_refused_before_work_and_mid_write_keeps_the_old_result(tmp_path):
    with _tmpfs(tmp_path, "2m") as mount:
        target = mount / "out"
        _make_result(target, "old")
        # Mid-write: the disk fills during the build -> one InputError, old result intact.
        with pytest.raises(InputError, match="No space left"), output_dir(target, overwrite=True) as tmp:
            (tmp / "big.bin").write_bytes(b"\0" * (4 << 20))
        assert (target / "result.txt").read_text() == "old"
        assert leftovers(target) == []
        # Before work: a full file system is refused up front.
        (mount / "filler").write_bytes(b"\0" * ((2 << 20) - (256 << 10)))
        with contextlib.suppress(OSError), (mount / "filler2").open("wb") as handle:
            handle.write(b"\0" * (1 << 20))
        ran = False
        with pytest.raises(InputError, match="bytes free"), output_dir(mount / "other"):
            ran = True
        assert not ran


def test_claim_unique_dir_gives_runs_of_the_same_instant_distinct_folders(tmp_path):
    first = claim_unique_dir(tmp_path, "20260101-000000_abc_model_def")
    second = claim_unique_dir(tmp_path, "20260101-000000_abc_model_def")
    with first as build_a, second as build_b:
        write_text(build_a / "x.txt", "a")
        write_text(build_b / "x.txt", "b")
    assert first.final is not None and second.final is not None
    assert first.final != second.final
    assert second.final.name.endswith("-2")
    assert (first.final / "x.txt").read_text() == "a"
    assert (second.final / "x.txt").read_text() == "b"


def test_commit_file_replaces_only_on_success(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), commit_file(target, overwrite=True) as tmp:
        tmp.write_text("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    with commit_file(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_file_temp_of_a_dead_process_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".report.json.{pid}-deadbeef.tmp"
    stale.write_text("half")
    live = tmp_path / f".report.json.{os.getpid()}-cafef00d.tmp"  # this process: kept
    live.write_text("mine")
    write_text(tmp_path / "report.json", "{}")
    assert not stale.exists()
    assert live.exists()
