"""``isograph benchmark`` and ``isograph fixtures`` from the command line."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

import isograph.benchmark as bench_mod
from isograph.bundle import read_bundle
from isograph.cli import main
from isograph.fit import parse_overrides
from isograph.fixtures import naive_modules
from omicsrun import InputError
from omicsrun.testing import another_writer


def _exit_code(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    _exit_code.out = captured.out
    return info.value.code, captured.err.strip()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["benchmark", "--suite", "nope"], "unknown fixture suite 'nope'"),
        (["benchmark", "--suite", "core_v1", "--backend", "nope"], "unknown backend 'nope'"),
        (["benchmark", "--suite", "core_v1", "--fixture", "nope"], "no fixture 'nope'"),
        (["benchmark", "--suite", "core_v1", "--", "novalue"], "key=value"),
        # checked before any fixture is generated: tmp_path stays empty
        (
            ["benchmark", "--suite", "core_v1", "--", "baseline.nope=1"],
            "unknown override key 'baseline.nope'",
        ),
        (
            ["fixtures", "generate", "--suite", "core_v1", "--fixture", "nope", "--out", "X"],
            "no fixture 'nope'",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, needle, tmp_path, capsys):
    argv = [a if a != "X" else str(tmp_path / "out") for a in argv]
    if argv[0] == "benchmark":
        argv += ["--root", str(tmp_path)] if "--" not in argv else []
        if "--" in argv:
            argv[argv.index("--") : argv.index("--")] = ["--root", str(tmp_path)]
    code, err = _exit_code(argv, capsys)
    assert code == 2
    assert needle in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_overrides_parse():
    assert parse_overrides(["a.b=1", "c=x=y"]) == {"a.b": "1", "c": "x=y"}
    with pytest.raises(InputError, match="key=value"):
        parse_overrides(["=1"])


def test_benchmark_command_passes_overrides_and_prints_table(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(bundle_path, out_dir, *, backend, seed, overrides, overwrite):
        seen.update(overrides)
        out_dir.mkdir(parents=True)
        naive_modules(read_bundle(bundle_path)).to_parquet(out_dir / "modules.parquet", index=False)
        return {
            "wall_seconds": 0.1,
            "cpu_seconds": 0.1,
            "peak_rss_bytes": 2**20,
            "rss_before_fit_bytes": 2**19,
        }

    monkeypatch.setattr(bench_mod, "_run_fit", fake)
    argv = [
        "benchmark",
        "--suite",
        "core_v1",
        "--fixture",
        "nonlinear",
        "--stage",
        "t1",
        "--root",
        str(tmp_path),
    ]
    assert _exit_code([*argv, "--no-progress", "--", "baseline.min_module_size=7"], capsys)[0] == 0
    out = _exit_code.out
    assert "nonlinear" in out and "f_rr" in out
    assert seen == {"baseline.min_module_size": "7"}
    report = json.loads((tmp_path / "artifacts" / "reports" / "t1-benchmark.json").read_text())
    assert report["overrides"] == {"baseline.min_module_size": "7"}
    # a stage that already holds results is refused (one line, exit 2) and left as it was
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "artifacts").rglob("*"))
    code, err = _exit_code([*argv, "--no-progress"], capsys)
    assert code == 2 and "already has results" in err and len(err.splitlines()) == 1
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "artifacts").rglob("*")) == before


def test_fixtures_generate_writes_readable_bundles(tmp_path, capsys):
    argv = ["fixtures", "generate", "--suite", "core_v1", "--fixture", "nonlinear", "--out", str(tmp_path)]
    assert _exit_code([*argv, "--seed", "2"], capsys)[0] == 0
    bundle = read_bundle(Path(tmp_path) / "nonlinear")
    assert bundle.provenance["seed"] == "2" and bundle.n_genes == 1200
    code, err = _exit_code(argv, capsys)
    assert code == 2 and "already holds" in err


def test_fixtures_generate_checks_every_target_before_writing(tmp_path, capsys):
    (tmp_path / "nonlinear").mkdir()
    (tmp_path / "nonlinear" / "keep.txt").write_text("x")
    argv = ["fixtures", "generate", "--suite", "core_v1", "--out", str(tmp_path)]
    code, err = _exit_code([*argv, "--fixture", "standard", "--fixture", "nonlinear"], capsys)
    assert code == 2 and "already holds" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nonlinear"]  # standard not written
    code, err = _exit_code([*argv, "--fixture", "standard", "--seed", "-1"], capsys)
    assert code == 2 and "non-negative integer" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nonlinear"]


# -- fixtures generate: all bundles or none, never an earlier result lost ----------------

_SMALL = ["fixtures", "generate", "--suite", "smalln_v1"]  # factorial_n24, factorial_n40


def _files(folder: Path) -> dict[str, bytes]:
    """Every entry under ``folder`` (hidden ones included) with the bytes of each file."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(folder.rglob("*"))
    }


def test_fixtures_generate_refuses_existing_bundles_and_overwrite_replaces_them(tmp_path, capsys):
    out = tmp_path / "bundles"
    assert _exit_code([*_SMALL, "--out", str(out)], capsys)[0] == 0
    before = _files(out)
    assert sorted(p.name for p in out.iterdir()) == ["factorial_n24", "factorial_n40"]
    code, err = _exit_code([*_SMALL, "--out", str(out), "--seed", "1"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "already holds results" in err and "--overwrite" in err
    assert _files(out) == before  # byte for byte, no leftovers
    code, _ = _exit_code([*_SMALL, "--out", str(out), "--seed", "1", "--overwrite"], capsys)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["factorial_n24", "factorial_n40"]
    for name in ("factorial_n24", "factorial_n40"):
        assert read_bundle(out / name).provenance["seed"] == "1"
        assert (out / name / "manifest.json").read_bytes() != before[f"{name}/manifest.json"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("a bug")])
def test_fixtures_generate_failure_midway_keeps_every_earlier_bundle(tmp_path, capsys, monkeypatch, error):
    import isograph.bundle

    out = tmp_path / "bundles"
    assert _exit_code([*_SMALL, "--out", str(out)], capsys)[0] == 0
    before = _files(out)
    real_write = isograph.bundle.write_bundle
    calls = []

    def write_then_fail(bundle, path, **kwargs):
        calls.append(path)
        if len(calls) == 1:  # the first bundle is written whole ...
            return real_write(bundle, path, **kwargs)
        (Path(path) / "samples.parquet").write_bytes(b"half")  # ... the second breaks midway
        raise error

    monkeypatch.setattr(isograph.bundle, "write_bundle", write_then_fail)
    argv = [*_SMALL, "--out", str(out), "--seed", "1", "--overwrite"]
    if isinstance(error, OSError):
        code, err = _exit_code(argv, capsys)
        assert code == 2 and len(err.splitlines()) == 1 and "No space left" in err
    else:
        with pytest.raises(RuntimeError, match="a bug"):
            main(argv)
    assert len(calls) == 2
    # Neither bundle was replaced (the complete first one included); nothing partial is left.
    assert _files(out) == before
    fresh = tmp_path / "fresh"
    calls.clear()
    with contextlib.suppress(SystemExit, RuntimeError):
        main([*_SMALL, "--out", str(fresh)])
    assert not fresh.exists() or list(fresh.iterdir()) == []


def test_fixtures_generate_refuses_a_concurrent_writer(tmp_path, capsys):
    out = tmp_path / "bundles"
    assert _exit_code([*_SMALL, "--out", str(out)], capsys)[0] == 0
    before = _files(out)
    with another_writer(out / "factorial_n40"):
        code, err = _exit_code([*_SMALL, "--out", str(out), "--seed", "1", "--overwrite"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "is writing bundle" in err and "factorial_n40" in err
    assert _files(out) == before  # factorial_n24 was not replaced either
