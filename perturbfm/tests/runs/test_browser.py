"""The run report and the leaderboard render in a real browser (headless chromium) without errors.

Screenshots go to ``tmp_path`` and, when ``PERTURBFM_SCREENSHOT_DIR`` is set, are copied there
so that a person can look at them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from perturbfm.report.leaderboard import write_leaderboard
from perturbfm.runs import train_baseline
from perturbfm.runs.testing import stored_synthetic_split

pytestmark = pytest.mark.browser


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium not found; tools/install-system-deps.sh installs it (apt-get install chromium)")
    return exe


def _render(page: Path, png: Path, *, height: int) -> list[str]:
    """Screenshot ``page``; return the console messages chromium logged while loading it."""
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size=1200,{height}",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert png.is_file() and png.stat().st_size > 10_000
    keep = os.environ.get("PERTURBFM_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def test_report_and_leaderboard_render_without_console_errors(tmp_path):
    root = tmp_path / "w"
    split = stored_synthetic_split(
        root, {"name": "combo", "holdout_fraction": 0.5}, n_obs=500, n_genes=30, n_perts=10, seed=2
    )
    runs = [
        train_baseline(
            data_dir=root / "data",
            split_hash=split.frozen_hash,
            baseline=name,
            runs_root=root / "runs",
            split_dir=root / "splits",
        )
        for name in ("control_only", "additive")
    ]
    board = write_leaderboard(root / "runs", root / "leaderboard.html")
    text = board.read_text()
    # every report link resolves to a file
    links = re.findall(r"href='([^']+)'", text)
    assert len(links) == 2
    assert all((board.parent / link).is_file() for link in links)
    assert "\u2605 " in text  # one run selected on validation
    report = runs[1] / "report.html"
    page = report.read_text()
    assert "&amp;uarr;" not in page and "&uarr;" not in page
    assert "Worst 1 " not in page
    assert "Metric definitions" in page and page.count("<h2 id='definitions'>") == 1
    console = _render(report, tmp_path / "report.png", height=4000)
    console += _render(board, tmp_path / "leaderboard.png", height=800)
    assert console == []
