"""Does a backend fit 20,000 features x 1,000 samples in memory? Wall and peak RSS per backend.

    python benchmarks/isograph_large.py [--features 20000] [--samples 1000]
        [--backend latent --backend graph --backend baseline] [-- latent.n_factors=20 ...]

A planted factor-structured feature matrix (float32; 40 programs of 50 features on top of
unit noise) is built in memory, each backend fits it in a fresh child interpreter, and the
child's wall seconds and peak RSS (``VmHWM``) are printed side by side with the ARI of the
features' modules against the planted programs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
from sklearn.metrics import adjusted_rand_score
from isograph.backends import get_backend
from isograph.benchmark import peak_rss_bytes
from isograph.features.build import FeatureSet
from isograph.fit.core import _resolve_configs
args = json.loads(sys.argv[1])
p, n, seed = args["features"], args["samples"], 0
rng = np.random.default_rng(seed)
n_prog, size = 40, 50
x = rng.standard_normal((n, p), dtype=np.float32)
truth = np.full(p, -1)
for k in range(n_prog):
    cols = np.arange(k * size, (k + 1) * size)
    truth[cols] = k
    load = rng.uniform(0.5, 1.0, size) * rng.choice([-1, 1], size)
    x[:, cols] += np.outer(rng.standard_normal(n), load).astype(np.float32)
x -= x.mean(axis=0)
x /= x.std(axis=0)
genes = np.array([f"G{j:05d}" for j in range(p)], dtype=object)
features = FeatureSet(matrix=x, feature_ids=np.array([g + ":switch" for g in genes], dtype=object),
                      feature_type=np.array(["switch"] * p, dtype=object), gene_ids=genes,
                      sample_ids=np.array([f"s{i}" for i in range(n)], dtype=object), dof=n - 1)
model = get_backend(args["backend"])
config, _ = _resolve_configs(args["backend"], model.config_class(), args["overrides"])
start = time.perf_counter()
result = model.fit(features, config=config, seed=seed)
wall = time.perf_counter() - start
label = result.modules.set_index("gene_id").reindex(genes)["module_id"].to_numpy()
print(json.dumps({"backend": args["backend"], "wall_s": wall, "peak_rss_mib": peak_rss_bytes() / 2**20,
                  "ari_vs_planted": adjusted_rand_score(truth, label),
                  "n_modules": int(len(set(label)) - ("unassigned" in set(label)))}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. latent.n_factors=20")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.overrides)
    print("| backend | features x samples | wall s | peak RSS MiB | ARI vs planted | modules |")
    print("|---|---|---|---|---|---|")
    for backend in args.backend or ["latent", "graph", "baseline"]:
        own = {k: v for k, v in overrides.items() if k.startswith(f"{backend}.")}
        payload = json.dumps(
            {"features": args.features, "samples": args.samples, "backend": backend, "overrides": own}
        )
        done = subprocess.run(
            [sys.executable, "-c", CHILD, payload], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(f"| {backend} | failed: {done.stderr.strip().splitlines()[-1]} |||||")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {backend} | {args.features} x {args.samples} | {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} "
            f"| {r['ari_vs_planted']:.3f} | {r['n_modules']}/40 |",
            flush=True,
        )


if __name__ == "__main__":
    main()
