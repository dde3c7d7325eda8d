"""``perturbfm graphs build`` and ``perturbfm leaderboard``: an earlier result is never lost.

Each output is refused when it exists (without ``--overwrite``), replaced with it, left
byte-identical by a failure midway, and refused while another writer holds it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import perturbfm.data.graph
import perturbfm.report.leaderboard
from omicsrun.testing import another_writer
from perturbfm.cli import main
from perturbfm.data.artifact import load_dataset
from perturbfm.data.graph import load_graph
from perturbfm.runs import train_baseline
from perturbfm.runs.testing import tiny_context_ood_split


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    split = tiny_context_ood_split(root)
    train_baseline(
        data_dir=root / "data",
        split_hash=split.frozen_hash,
        baseline="global_mean",
        runs_root=root / "runs",
        split_dir=root / "splits",
    )
    var = load_dataset(root / "data").var
    for name, pairs in {
        "ring": [(i, (i + 1) % 20) for i in range(20)],
        "star": [(0, i) for i in range(1, 20)],
    }.items():
        rows = "".join(f"{var[a]}\t{var[b]}\t1\n" for a, b in pairs)
        (root / f"{name}.tsv").write_text("gene_a\tgene_b\tweight\n" + rows)
    return root


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    return int(exc.value.code or 0), err


def _entries(folder: Path) -> dict[str, bytes]:
    """Every entry of ``folder`` (hidden ones included: no .tmp or .lock may be left)."""
    return {p.name: p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.iterdir())}


def _fails_one_line(argv: list[str], capsys, needle: str) -> None:
    code, err = _run(argv, capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("perturbfm: error: ")
    assert needle in err


# -- graphs build -------------------------------------------------------------------------


def _graph_args(root: Path, name: str, edges: str, *extra: str) -> list[str]:
    data = str(root / "data")
    return [
        "graphs",
        "build",
        "--data",
        data,
        "--name",
        name,
        "--from",
        "edges",
        "--edges",
        str(root / edges),
        *extra,
    ]


def test_graphs_build_refuses_an_existing_graph_and_overwrite_replaces_it(stored, capsys):
    graphs = stored / "data" / "graphs"
    assert _run(_graph_args(stored, "g_refuse", "ring.tsv"), capsys)[0] == 0
    ring = load_graph(graphs / "g_refuse.npz")
    before = _entries(graphs)
    _fails_one_line(_graph_args(stored, "g_refuse", "star.tsv"), capsys, "already exists")
    assert _entries(graphs) == before
    assert _run(_graph_args(stored, "g_refuse", "star.tsv", "--overwrite"), capsys)[0] == 0
    star = load_graph(graphs / "g_refuse.npz")
    assert not np.array_equal(star > 0, ring > 0) and (star[0, 1:] > 0).all()
    assert sorted(_entries(graphs)) == sorted(before)  # replaced in place, nothing beside it


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("a bug")])
def test_graphs_build_failure_midway_keeps_the_earlier_graph(stored, capsys, monkeypatch, error):
    graphs = stored / "data" / "graphs"
    name = f"g_fail_{type(error).__name__}"
    assert _run(_graph_args(stored, name, "ring.tsv"), capsys)[0] == 0
    before = _entries(graphs)

    def write_half(path, data):
        Path(path).write_bytes(data[: len(data) // 2])
        raise error

    monkeypatch.setattr(perturbfm.data.graph, "write_bytes", write_half)
    for target in (name, f"{name}_new"):  # an earlier graph, and none yet
        argv = _graph_args(stored, target, "star.tsv", "--overwrite")
        if isinstance(error, OSError):
            _fails_one_line(argv, capsys, "No space left on device")
        else:
            with pytest.raises(RuntimeError, match="a bug"):
                main(argv)
        assert _entries(graphs) == before


def test_graphs_build_refuses_a_concurrent_writer(stored, capsys):
    graphs = stored / "data" / "graphs"
    assert _run(_graph_args(stored, "g_busy", "ring.tsv"), capsys)[0] == 0
    before = _entries(graphs)
    with another_writer(graphs / "g_busy.npz"):
        _fails_one_line(_graph_args(stored, "g_busy", "star.tsv", "--overwrite"), capsys, "is writing graph")
    assert _entries(graphs) == before


def test_graphs_build_checks_its_input_before_creating_anything(tmp_path, stored, capsys):
    _fails_one_line(
        [
            "graphs",
            "build",
            "--data",
            str(tmp_path / "none"),
            "--name",
            "g",
            "--from",
            "edges",
            "--edges",
            "x",
        ],
        capsys,
        "does not exist",
    )
    assert list(tmp_path.iterdir()) == []


# -- leaderboard --------------------------------------------------------------------------


def _board_args(root: Path, board: Path, *extra: str) -> list[str]:
    return ["leaderboard", "--runs", str(root / "runs"), "--out", str(board), *extra]


def test_leaderboard_refuses_an_existing_file_and_overwrite_replaces_it(stored, tmp_path, capsys):
    board = tmp_path / "lb.html"
    assert _run(_board_args(stored, board), capsys)[0] == 0
    before = _entries(tmp_path)
    _fails_one_line(_board_args(stored, board), capsys, "already exists")
    assert _entries(tmp_path) == before
    board.write_text("an earlier page")
    assert _run(_board_args(stored, board, "--overwrite"), capsys)[0] == 0
    assert board.read_bytes() == before["lb.html"]
    assert sorted(_entries(tmp_path)) == ["lb.html"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("a bug")])
def test_leaderboard_failure_midway_keeps_the_earlier_file(stored, tmp_path, capsys, monkeypatch, error):
    board = tmp_path / "lb.html"
    board.write_text("an earlier page")

    def write_half(path, text):
        Path(path).write_text(text[: len(text) // 2])
        raise error

    monkeypatch.setattr(perturbfm.report.leaderboard, "write_text", write_half)
    for target in (board, tmp_path / "new.html"):  # an earlier file, and none yet
        argv = _board_args(stored, target, "--overwrite")
        if isinstance(error, OSError):
            _fails_one_line(argv, capsys, "No space left on device")
        else:
            with pytest.raises(RuntimeError, match="a bug"):
                main(argv)
        assert _entries(tmp_path) == {"lb.html": b"an earlier page"}


def test_leaderboard_refuses_a_concurrent_writer(stored, tmp_path, capsys):
    board = tmp_path / "lb.html"
    board.write_text("an earlier page")
    with another_writer(board):
        _fails_one_line(_board_args(stored, board, "--overwrite"), capsys, "is writing leaderboard")
    assert _entries(tmp_path) == {"lb.html": b"an earlier page"}


def test_leaderboard_inside_a_run_folder_is_refused(stored, capsys):
    run = next(p for p in (stored / "runs").iterdir() if (p / "report.html").is_file())
    before = (run / "report.html").read_bytes()
    _fails_one_line(_board_args(stored, run / "report.html", "--overwrite"), capsys, "lies inside the input")
    assert (run / "report.html").read_bytes() == before


def test_leaderboard_beside_the_runs_is_allowed(stored, capsys):
    # runs/leaderboard.html lies in the runs folder but in no run: written, and a new run
    # folder is not made of it (the page is a file, not a folder).
    board = stored / "runs" / "leaderboard.html"
    try:
        with pytest.raises(SystemExit) as exc:
            main(_board_args(stored, board))
        assert exc.value.code == 0 and "<table" in board.read_text()
    finally:
        board.unlink(missing_ok=True)
