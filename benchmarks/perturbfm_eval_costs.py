"""Where a full PerturbFM evaluation spends its time and memory: DE panel, data ceiling, per-cell pass.

Runs ``evaluate_predictions`` once on the work folder that ``perturbfm_scale.py`` leaves
(its artifact, split and clipped predictions), timing the DE panel, the split-half data
ceiling and the per-cell uncertainty pass (CPU and wall seconds, extra peak memory traced by
``tracemalloc``), then the whole evaluation with the process's peak RSS.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/perturbfm_eval_costs.py --size 100k
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1] - base
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        print(f"| {name} | {cpu:.1f} | {wall:.1f} | {peak / 1e6:.0f} |", flush=True)
        return out

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", help="work folder benchmarks/datasets/work_<size>")
    args = parser.parse_args()
    import perturbfm.eval.evaluator as ev
    from perturbfm.runs.core import load_run_inputs
    from perturbfm.runs.predictions import load_predictions

    work = ROOT / "datasets" / f"work_{args.size}"
    run = next((work / "runs").iterdir())
    split_hash = (run / "split_hash.txt").read_text().strip()
    inputs = load_run_inputs(work / "artifact", split_hash, split_dir=work / "splits")
    preds = load_predictions(work / "celleval" / "preds_clipped.npz")
    ev.de_panel = timed("DE panel (celleval_de)", ev.de_panel)  # type: ignore[assignment]
    ev.split_half_ceiling = timed("data ceiling (10 split-half repeats)", ev.split_half_ceiling)  # type: ignore[assignment]
    ev._cell_pass = timed("per-cell pass (uncertainty, negative counts)", ev._cell_pass)  # type: ignore[assignment]
    print("| part | CPU s | wall s | extra traced peak (MB) |\n|---|---:|---:|---:|")
    tracemalloc.start()
    c0, w0 = time.process_time(), time.perf_counter()
    ev.evaluate_predictions(
        inputs.ds,
        test_idx=inputs.test_idx,
        control_idx=inputs.control_idx,
        mean=preds["mean"],
        var=preds.get("var"),
        metric_genes=inputs.split.metric_genes,
        seed=0,
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| whole evaluate_predictions | {time.process_time() - c0:.1f} | {time.perf_counter() - w0:.1f} | |"
    )
    print(f"\npeak RSS of the process (data and predictions loaded): {rss:.0f} MB")
    ds = inputs.ds
    print(f"{inputs.test_idx.size} test cells, {inputs.control_idx.size} test controls, {ds.n_genes} genes")


if __name__ == "__main__":
    main()
