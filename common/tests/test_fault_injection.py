"""kill -9 at random moments of both tools' long commands: the earlier result survives, the rerun works.

Each test makes an earlier result, starts the command that would replace it, kills it with
SIGKILL at a moment drawn from a seeded generator (``OMICSRUN_KILL_SEED`` changes the draw),
then checks that the target holds either the earlier result byte for byte or a complete new
one, and that the same command run again succeeds (cleaning the dead run's leftovers).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from omicsrun.commit import is_locked, leftovers
from omicsrun.hashing import sha256_dir, sha256_file

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
_RNG = random.Random(int(os.environ.get("OMICSRUN_KILL_SEED", "12")))


def _kill_at_random_moment(
    argv: list[str], *, low: float, high: float, env: dict[str, str] | None = None
) -> float:
    """Start ``argv``, SIGKILL it after a uniform draw in [low, high] seconds; return the delay."""
    delay = _RNG.uniform(low, high)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    if proc.poll() is None:
        # The benchmark's fit runs in a spawned child: kill it too (listed before the parent
        # dies, since an orphan is re-parented and can no longer be found by its parent id).
        children = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    proc.wait(timeout=60)
    return delay


def _run_ok(argv: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _intact_or_new(target: Path, before: str, complete_marker: str) -> str:
    assert target.is_dir(), f"{target} vanished after the kill"
    after = sha256_dir(target)
    if after != before:  # the kill came after the swap: the new result must be whole
        assert (target / complete_marker).is_file()
    return after


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from isograph.bundle import write_bundle
    from isograph.fixtures import make_fixture

    path = tmp_path_factory.mktemp("kill") / "bundle"
    write_bundle(make_fixture("core_v1", "nonlinear", seed=0), path)
    return path


def test_kill_fit_overwrite_keeps_the_earlier_fit(bundle, tmp_path):
    out = tmp_path / "fit"
    argv = [str(BIN / "isograph"), "fit", "--bundle", str(bundle), "--out", str(out)]
    start = time.monotonic()
    _run_ok(argv)
    took = time.monotonic() - start
    before, modules = sha256_dir(out), sha256_file(out / "modules.parquet")
    _kill_at_random_moment([*argv, "--overwrite"], low=0.2 * took, high=0.95 * took)
    _intact_or_new(out, before, "fit_config.json")
    assert not is_locked(out)
    _run_ok([*argv, "--overwrite"])
    assert leftovers(out) == []
    assert sha256_file(out / "modules.parquet") == modules  # same inputs and seed: the same modules


def test_kill_benchmark_overwrite_keeps_the_earlier_stage(tmp_path):
    root = tmp_path / "root"
    argv = [
        str(BIN / "isograph"),
        "benchmark",
        "--suite",
        "core_v1",
        "--fixture",
        "nonlinear",
        "--backend",
        "baseline",
        "--root",
        str(root),
        "--no-progress",
    ]
    start = time.monotonic()
    _run_ok(argv)
    took = time.monotonic() - start
    stage = root / "artifacts" / "benchmarks" / "core_v1-baseline"
    report = root / "artifacts" / "reports" / "core_v1-baseline-benchmark.json"
    before, report_before = sha256_dir(stage), report.read_bytes()
    _kill_at_random_moment([*argv, "--overwrite"], low=0.2 * took, high=0.9 * took)
    assert report.read_bytes() == report_before or report.is_file()
    _intact_or_new(stage, before, "nonlinear/fit_config.json")
    assert (stage / "nonlinear" / "modules.parquet").is_file()  # what the report points at exists
    out = _run_ok([*argv, "--overwrite"])
    assert "nonlinear" in out
    assert leftovers(stage) == []


@pytest.fixture(scope="module")
def pfm_split(tmp_path_factory):
    from perturbfm.runs.testing import stored_synthetic_split

    root = tmp_path_factory.mktemp("pfm_kill")
    split = stored_synthetic_split(
        root,
        {"name": "context_ood", "holdout_contexts": ["C1"]},
        n_obs=600,
        n_genes=40,
        n_contexts=2,
        n_perts=8,
        seed=1,
    )
    return root, split.frozen_hash


def test_kill_train_leaves_no_partial_run_and_the_rerun_works(pfm_split):
    root, split_hash = pfm_split
    runs = root / "runs"
    argv = [
        str(BIN / "perturbfm"),
        "train",
        "baseline",
        "--data",
        str(root / "data"),
        "--split",
        split_hash,
        "--baseline",
        "ridge",
        "--runs-root",
        str(runs),
        "--split-dir",
        str(root / "splits"),
    ]
    start = time.monotonic()
    _run_ok(argv)
    took = time.monotonic() - start
    (earlier,) = [p for p in runs.iterdir() if not p.name.startswith(".")]
    before = sha256_dir(earlier)
    _kill_at_random_moment(argv, low=0.2 * took, high=0.9 * took)
    assert sha256_dir(earlier) == before
    for run in runs.iterdir():  # every visible run folder is complete
        if not run.name.startswith("."):
            assert (run / "metrics.json").is_file(), run
    line = _run_ok(argv).strip().splitlines()[-1]
    new_run = Path(line.removeprefix("run_dir="))
    assert (new_run / "report.html").is_file()
    assert new_run != earlier


_DEMO = (
    "import sys; from perturbfm.demo import run_demo; "
    "run_demo(sys.argv[1], overwrite=True, include_devel=False, baselines=['global_mean', 'ridge'], "
    "synthetic_params={'n_obs': 600, 'n_genes': 40, 'n_perts': 8})"
)


def test_kill_demo_overwrite_keeps_the_earlier_demo(tmp_path):
    out = tmp_path / "demo"
    argv = [sys.executable, "-c", _DEMO, str(out)]
    start = time.monotonic()
    _run_ok(argv)
    took = time.monotonic() - start
    before = sha256_dir(out)
    _kill_at_random_moment(argv, low=0.2 * took, high=0.9 * took)
    _intact_or_new(out, before, "summary.json")
    _run_ok(argv)
    assert (out / "summary.json").is_file()
    assert leftovers(out) == []
