"""GTF parse benchmark: a full-size GENCODE-like GTF (tiled from the shipped v29 slice).

The v29 slice (4,995 lines) is repeated 540 times (~2.7 M lines, ~1.2 GB): copy k shifts
coordinates by k x 2,000,000 and suffixes ENSG/ENST/ENSE ids with ``_r{k}``. The file is
written to a temporary folder (or --workdir) and deleted afterwards; it is never committed.

Figures, side by side: IsoGraph's columnar reader (polars) and cache, against the line loop
the seed describes (a Python ``for line in file`` parse of the same attributes), measured on
the first --loop-lines lines and extrapolated linearly.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/gtf_parse_bench.py
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SLICE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "gtf" / "gencode.v29.chr1_head119genes.gtf.gz"
)
_ID = re.compile(r"(ENS[GTE]\d+(?:\.\d+)?)")

_CHILD = """
import json, resource, sys, time
from isograph.annotate.gtf import load_gtf, read_gtf
gtf, cache = sys.argv[1], sys.argv[2]
t0 = time.perf_counter(); table = read_gtf(gtf); parse_s = time.perf_counter() - t0
t0 = time.perf_counter(); load_gtf(gtf, cache=cache); write_s = time.perf_counter() - t0
t0 = time.perf_counter(); cached = load_gtf(gtf, cache=cache); load_s = time.perf_counter() - t0
print(json.dumps({"rows": len(table.frame), "transcripts": int(table.frame["transcript_id"].nunique()),
                  "parse_s": parse_s, "cache_build_s": write_s, "cache_load_s": load_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def tile(source: Path, target: Path, copies: int) -> int:
    with gzip.open(source, "rt") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    parts = [line.split("\t") for line in lines]
    n = 0
    with target.open("w") as out:
        for k in range(copies):
            offset = k * 2_000_000
            suffix = rf"\1_r{k}"
            block = "".join(
                "\t".join([*p[:3], str(int(p[3]) + offset), str(int(p[4]) + offset), *p[5:]]) for p in parts
            )
            out.write(_ID.sub(suffix, block) if k else block)
            n += len(parts)
    return n


def line_loop(path: Path, max_lines: int) -> float:
    """The seed's approach: a Python loop over lines, splitting attributes into dicts."""
    start = time.perf_counter()
    rows = []
    with path.open() as handle:
        for i, line in enumerate(handle):
            if i >= max_lines:
                break
            fields = line.rstrip("\n").split("\t")
            attrs = {}
            for item in fields[8].split(";"):
                item = item.strip()
                if item:
                    key, _, value = item.partition(" ")
                    attrs[key] = value.strip('"')
            key_fields = (attrs.get("gene_id"), attrs.get("transcript_id"), attrs.get("transcript_type"))
            rows.append((fields[0], fields[2], int(fields[3]), int(fields[4]), fields[6], *key_fields))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=540)
    parser.add_argument("--loop-lines", type=int, default=300_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        gtf = Path(tmp) / "tiled.gtf"
        t0 = time.perf_counter()
        n_lines = tile(SLICE, gtf, args.copies)
        size_mb = gtf.stat().st_size / 1e6
        print(f"tiled GTF: {n_lines:,} lines, {size_mb:,.0f} MB, written in {time.perf_counter() - t0:.1f} s")
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(gtf), str(Path(tmp) / "cache.parquet")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        fig = json.loads(proc.stdout.strip().splitlines()[-1])
        loop_s = line_loop(gtf, args.loop_lines) * n_lines / min(args.loop_lines, n_lines)
    print(f"{'':28s}{'isograph (polars)':>20s}{'python line loop':>20s}")
    print(f"{'parse, full file (s)':28s}{fig['parse_s']:>20.1f}{loop_s:>20.1f}  (loop extrapolated)")
    print(f"{'peak RSS (MB)':28s}{fig['peak_rss_mb']:>20.0f}{'-':>20s}")
    print(f"{'cache build (s)':28s}{fig['cache_build_s']:>20.1f}{'-':>20s}")
    print(f"{'cache load (s)':28s}{fig['cache_load_s']:>20.2f}{'-':>20s}")
    print(f"rows kept {fig['rows']:,}, transcripts {fig['transcripts']:,}")


if __name__ == "__main__":
    main()
