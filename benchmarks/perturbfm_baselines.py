"""Print the PerturbFM baseline x split table (PCC-delta, RMSE, rank, E-distance, coverage@0.9).

Runs :func:`perturbfm.demo.run_demo` (synthetic combo split; on the real development set
``../shared/data/perturbench_devel/devel.h5ad`` a Norman K562 ``combo`` split and a
``context_ood`` split holding out U87MG; every baseline) and prints its markdown table.

    python benchmarks/perturbfm_baselines.py [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from perturbfm.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="demo folder to keep (default: a temporary one)"
    )
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            summary = run_demo(Path(tmp) / "demo")
    else:
        summary = run_demo(args.out)
    print(summary["markdown"])
    print(f"{len(summary['rows'])} runs in {summary['seconds']:.1f} s")


if __name__ == "__main__":
    main()
