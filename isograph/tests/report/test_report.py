import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from isograph.bundle import write_bundle
from isograph.cli import main
from isograph.fit import fit_bundle, write_fit
from isograph.fixtures import make_fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def fit_and_explain(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    bundle = make_fixture("multiplex_v1", "multiplex_standard", seed=0)
    write_bundle(bundle, root / "bundle")
    write_fit(fit_bundle(bundle, seed=0), root / "fit")
    with pytest.raises(SystemExit):
        main(
            [
                "explain-module",
                "--fit",
                str(root / "fit"),
                "--bundle",
                str(root / "bundle"),
                "--no-enrichment",
                "--out",
                str(root / "explain"),
            ]
        )
    return root


def _console_messages(html_path, screenshot):
    # Every console message (log, warning, error, uncaught exception) appears on stderr as
    # "INFO:CONSOLE"; the report runs no script, so any message is a failure.
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,3000",
            f"--screenshot={screenshot}",
            html_path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def test_report_is_self_contained(fit_and_explain, tmp_path, capsys):
    root = fit_and_explain
    out = tmp_path / "report.html"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "report",
                "--fit",
                str(root / "fit"),
                "--explain",
                str(root / "explain"),
                "--bundle",
                str(root / "bundle"),
                "--out",
                str(out),
            ]
        )
    assert exc.value.code in (0, None)
    page = out.read_text()
    for section in (
        "Data and filters",
        "Modules",
        "Eigengene tree",
        "Module-trait links",
        "Top drivers per module",
        "Backend diagnostics",
        "Isoform fractions",
    ):
        assert section in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external request
    assert "SYN" in page  # gene names, not only ids
    assert "Eigengenes by Dx" in page  # the design factor's pattern per module
    with pytest.raises(SystemExit) as exc:
        main(["report", "--fit", str(tmp_path / "nofit"), "--out", str(tmp_path / "r2.html")])
    assert exc.value.code == 2
    assert not (tmp_path / "r2.html").exists()


def test_report_shows_module_stability_when_the_fit_ran_it(fit_and_explain, tmp_path):
    root = fit_and_explain
    fit_dir = tmp_path / "fit_stab"
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--bundle", str(root / "bundle"), "--out", str(fit_dir), "--stability", "2",
              "--cluster", "serial"])  # fmt: skip
    assert exc.value.code in (0, None)
    out = tmp_path / "report.html"
    with pytest.raises(SystemExit) as exc:
        main(["report", "--fit", str(fit_dir), "--out", str(out)])
    assert exc.value.code in (0, None)
    page = out.read_text()
    assert "Module stability" in page
    import json

    rows = json.loads((fit_dir / "stability.json").read_text())["modules"]
    assert rows
    for row in rows:
        assert f"<td>{row['module_id']}</td>" in page
        assert f"<td>{row['stability']:.3g}</td>" in page


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (tools/install-system-deps.sh)")
def test_report_renders_in_headless_chromium_without_console_errors(fit_and_explain, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    assert _console_messages(bad, tmp_path / "bad.png")  # the check can fail
    root = fit_and_explain
    out = tmp_path / "report.html"
    with pytest.raises(SystemExit):
        main(
            [
                "report",
                "--fit",
                str(root / "fit"),
                "--explain",
                str(root / "explain"),
                "--bundle",
                str(root / "bundle"),
                "--out",
                str(out),
            ]
        )
    # ISOGRAPH_SCREENSHOT names a file to keep the screenshot (the README's one is made so).
    screenshot = Path(os.environ.get("ISOGRAPH_SCREENSHOT", tmp_path / "report.png"))
    assert _console_messages(out, screenshot) == []
    assert screenshot.stat().st_size > 50_000
