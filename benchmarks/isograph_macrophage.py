"""Every IsoGraph backend on the macrophage study, side by side: modules and where the markers land.

    python benchmarks/isograph_macrophage.py --bundle macrophage_bundle --root mac_fits \
        [--backend baseline --backend latent ...] [--report-only] [--out table.json] [-- key=value ...]

For each backend, ``isograph fit --bundle B --out ROOT/<backend> --backend NAME`` runs in its
own process under GNU ``time`` (wall, user + system CPU, peak RSS of the fit and its children,
so R's for ``wgcna``), unless ``--report-only`` reads fits already there (e.g. a ``wgcna`` fit
run separately under ``nice``). The table gives the number of modules, their sizes, and the
module of each interferon-gamma marker (CXCL10, CXCL9, GBP1, GBP5, IDO1, IRF1, STAT1) and
each Salmonella marker (IL1B, IL1A, CXCL8, CCL20), by gene name from the fit's
``modules.parquet``. "Separated" means both programs have markers in modules and no module
holds markers of both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

IFNG = ("CXCL10", "CXCL9", "GBP1", "GBP5", "IDO1", "IRF1", "STAT1")
SALMONELLA = ("IL1B", "IL1A", "CXCL8", "CCL20")
BACKENDS = ("baseline", "latent", "graph", "vae", "wgcna")


def run_fit(bundle: Path, out: Path, backend: str, overrides: list[str]) -> dict[str, float]:
    """One ``isograph fit`` under GNU time; returns wall, cpu and peak RSS (MiB)."""
    isograph = Path(sys.executable).with_name("isograph")
    command = [
        "/usr/bin/time",
        "-f",
        "TIME %e %U %S %M",
        str(isograph),
        "fit",
        "--bundle",
        str(bundle),
        "--out",
        str(out),
        "--backend",
        backend,
        "--overwrite",
    ]
    if overrides:
        command += ["--", *overrides]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("TIME ")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        msg = f"isograph fit --backend {backend} failed (exit {done.returncode}):\n{tail}"
        raise RuntimeError(msg)
    wall, user, system, rss_kib = (float(v) for v in lines[-1].split()[1:])
    return {"wall_s": wall, "cpu_s": user + system, "peak_rss_mib": rss_kib / 1024}


def summarise(fit_dir: Path) -> dict[str, Any]:
    """Modules, sizes and the module of every marker in one fit folder."""
    modules = pd.read_parquet(fit_dir / "modules.parquet")
    assigned = modules[modules["module_id"] != "unassigned"]
    sizes = assigned["module_id"].value_counts().sort_index()
    names = (
        modules.set_index(modules["gene_name"].astype(str))["module_id"] if "gene_name" in modules else None
    )

    def where(markers: tuple[str, ...]) -> dict[str, str]:
        if names is None:
            return dict.fromkeys(markers, "?")
        return {m: str(names[m]) if m in names.index else "absent" for m in markers}

    ifng, salmonella = where(IFNG), where(SALMONELLA)
    return {
        "n_modules": len(sizes),
        "sizes": {str(k): int(v) for k, v in sizes.items()},
        "n_unassigned": int((modules["module_id"] == "unassigned").sum()),
        "ifng": ifng,
        "salmonella": salmonella,
        "separated": separated(ifng, salmonella),
    }


def separated(ifng: dict[str, str], salmonella: dict[str, str]) -> bool:
    """Both programs have markers in modules, and no module holds markers of both."""
    a = {m for m in ifng.values() if m.startswith("M")}
    b = {m for m in salmonella.values() if m.startswith("M")}
    return bool(a) and bool(b) and not (a & b)


def _compact(where: dict[str, str]) -> str:
    groups: dict[str, list[str]] = {}
    for marker, module in where.items():
        groups.setdefault(module, []).append(marker)
    return "; ".join(f"{module}: {', '.join(ms)}" for module, ms in sorted(groups.items()))


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README table."""
    out = [
        "| backend | modules | sizes | IFNg markers | Salmonella markers | separated "
        "| wall s | CPU s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        values = sorted(row["sizes"].values(), reverse=True)
        sizes = ", ".join(f"{v:,}" for v in values[:6]) or "-"
        if len(values) > 6:
            sizes += f", ... ({len(values) - 6} more, {values[-1]:,}-{values[6]:,})"
        timing = row.get("timing") or {}
        out.append(
            f"| {row['backend']} | {row['n_modules']} | {sizes} | {_compact(row['ifng'])} | "
            f"{_compact(row['salmonella'])} | {'yes' if row['separated'] else 'no'} | "
            f"{timing.get('wall_s', float('nan')):.0f} | {timing.get('cpu_s', float('nan')):.0f} | "
            f"{timing.get('peak_rss_mib', float('nan')):.0f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="imported macrophage bundle")
    parser.add_argument("--root", type=Path, required=True, help="folder of the fits (ROOT/<backend>)")
    parser.add_argument("--backend", action="append", default=None, help="backend(s); default all five")
    parser.add_argument("--report-only", action="store_true", help="read existing fits, fit nothing")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    rows = []
    for backend in args.backend or BACKENDS:
        fit_dir = args.root / backend
        timing_file = args.root / f"{backend}-timing.json"
        if not args.report_only:
            args.root.mkdir(parents=True, exist_ok=True)
            timing = run_fit(args.bundle, fit_dir, backend, overrides)
            timing_file.write_text(json.dumps(timing, indent=2) + "\n")
        if not (fit_dir / "modules.parquet").is_file():
            print(f"{backend}: no fit in {fit_dir}", file=sys.stderr)
            continue
        timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
        rows.append({"backend": backend, **summarise(fit_dir), "timing": timing})
    print(markdown(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
