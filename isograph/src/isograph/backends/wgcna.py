"""The ``wgcna`` backend: R's ``WGCNA::blockwiseModules`` through the project's R bridge.

Algorithm (in R, through :mod:`isograph.rbridge`)
-------------------------------------------------
1. The feature matrix (samples x features, as every backend sees it) crosses to R as float32.
2. Soft power: ``power`` when given; otherwise ``pickSoftThreshold`` over powers 1-10, 12-20
   (``RsquaredCut`` 0.85) and, when no power reaches the cut (common at small n), the
   sample-size rule of the WGCNA FAQ (n < 20: 9; < 30: 8; < 40: 7; else 6; doubled for signed
   networks). The fit indices (scale-free R^2, slope, mean connectivity per power) go into
   the calibration record.
3. ``blockwiseModules`` with ``networkType``/``TOMType`` signed or unsigned, ``minModuleSize``,
   ``mergeCutHeight``, ``deepSplit``, ``maxBlockSize`` (blockwise above it), WGCNA's
   ``randomSeed`` set from ``seed``.
4. Grey (label 0) becomes ``unassigned``. A gene takes the label of its feature with the
   larger |kME| (multiplex genes have two features); modules with fewer than
   ``min_module_size`` genes are unassigned; ids ``M000``... by gene count.
5. Edges only when the network is one block: within-module feature pairs whose topological
   overlap reaches ``edge_min_tom``, one row per gene pair (max TOM). Abundance-abundance
   pairs only when ``allow_abundance_abundance``.

Typed outputs: the module eigengenes R computed (``sample_scores``, columns ``ME<label>``).
R's messages (``verbose``) go into the fit folder's ``run.log``; ``timeout_seconds`` bounds the
R process.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from isograph.backends.base import UNASSIGNED, BackendResult, register
from isograph.features.build import ABUNDANCE, FeatureSet
from isograph.network.components import relabel_by_size
from isograph.rbridge import check_r_packages, run_r, write_matrix, write_params
from omicsrun import InputError

WGCNA_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
p <- read.delim("params.tsv", colClasses = "character")
par <- setNames(p$value, p$key)
num <- function(k) as.numeric(par[[k]])
n_samples <- as.integer(par[["n_samples"]]); n_features <- as.integer(par[["n_features"]])
suppressPackageStartupMessages(library(WGCNA))
nthreads <- as.integer(par[["threads"]])
if (nthreads > 1) enableWGCNAThreads(nThreads = nthreads) else disableWGCNAThreads()
con <- file("x.f32", "rb")
values <- readBin(con, what = "numeric", n = n_samples * n_features, size = 4, endian = "little")
close(con)
if (length(values) != n_samples * n_features) stop("matrix file is shorter than expected")
dat <- matrix(values, nrow = n_samples, ncol = n_features)
colnames(dat) <- paste0("f", seq_len(n_features))
network <- par[["network_type"]]
start <- proc.time()[["elapsed"]]
power <- num("power")
power_source <- "given"
if (is.na(power)) {
  powers <- c(1:10, seq(12, 20, 2))
  sft <- pickSoftThreshold(dat, powerVector = powers, networkType = network,
                           RsquaredCut = num("rsquared_cut"), verbose = 2)
  fi <- sft$fitIndices
  out <- data.frame(power = fi$Power, r2 = fi$SFT.R.sq * -sign(fi$slope), slope = fi$slope,
                    mean_k = fi$mean.k., median_k = fi$median.k., max_k = fi$max.k.)
  write.table(out, "sft.tsv", sep = "\t", row.names = FALSE, quote = FALSE)
  power <- sft$powerEstimate
  power_source <- "pickSoftThreshold"
  if (is.na(power)) {
    power <- if (n_samples < 20) 9 else if (n_samples < 30) 8 else if (n_samples < 40) 7 else 6
    if (network != "unsigned") power <- 2 * power
    power_source <- "sample-size rule (no power reached the R^2 cut)"
  }
}
sft_seconds <- proc.time()[["elapsed"]] - start
single <- n_features <= as.integer(par[["max_block_size"]])
want_edges <- single && as.logical(par[["edges"]])
net <- blockwiseModules(
  dat, power = power, networkType = network, TOMType = network,
  minModuleSize = as.integer(par[["min_module_size"]]), mergeCutHeight = num("merge_cut_height"),
  deepSplit = as.integer(par[["deep_split"]]), maxBlockSize = as.integer(par[["max_block_size"]]),
  numericLabels = TRUE, randomSeed = as.integer(par[["seed"]]),
  saveTOMs = want_edges, saveTOMFileBase = "tom", verbose = 2
)
elapsed <- proc.time()[["elapsed"]] - start
writeLines(as.character(as.integer(net$colors)), "labels.txt")
me <- as.matrix(net$MEs)
write.table(me, "eigengenes.tsv", sep = "\t", row.names = FALSE, quote = FALSE)
if (want_edges) {
  load(net$TOMFiles[1])
  tom <- as.matrix(TOM)
  colors <- as.integer(net$colors)
  hit <- which(tom >= num("edge_min_tom") & upper.tri(tom), arr.ind = TRUE)
  same <- colors[hit[, 1]] == colors[hit[, 2]] & colors[hit[, 1]] != 0
  hit <- hit[same, , drop = FALSE]
  write.table(data.frame(i = hit[, 1] - 1L, j = hit[, 2] - 1L, tom = tom[hit]),
              "edges.tsv", sep = "\t", row.names = FALSE, quote = FALSE)
  unlink(net$TOMFiles)
}
writeLines(c(paste("power", power), paste("power_source", gsub(" ", "_", power_source)),
             paste("n_blocks", length(net$blockGenes)), paste("seconds", elapsed),
             paste("sft_seconds", sft_seconds)), "info.txt")
"""


@dataclass(frozen=True)
class WgcnaConfig:
    """Hyper-parameters of the wgcna backend (dotted overrides ``wgcna.<name>``).

    Attributes
    ----------
    power
        Soft-thresholding power; ``None`` picks it with ``pickSoftThreshold``.
    network_type
        ``unsigned``, ``signed`` or ``signed hybrid`` (network and TOM type alike).
    rsquared_cut
        Scale-free fit R^2 that ``pickSoftThreshold`` must reach.
    min_module_size, merge_cut_height, deep_split, max_block_size
        ``blockwiseModules`` arguments (WGCNA's defaults, ANCHORS.md).
    min_gene_module_size
        Gene modules with fewer genes (after features became genes) are unassigned.
    edge_min_tom
        Topological overlap at which two module features make an edge (one block only).
    allow_abundance_abundance
        Whether abundance-abundance pairs can be edges (multiplex).
    threads
        WGCNA threads.
    timeout_seconds
        The R process is stopped after this long.
    """

    power: float | None = None
    network_type: Literal["unsigned", "signed", "signed hybrid"] = "unsigned"
    rsquared_cut: float = 0.85
    min_module_size: int = 20
    merge_cut_height: float = 0.15
    deep_split: int = 2
    max_block_size: int = 5000
    min_gene_module_size: int = 10
    edge_min_tom: float = 0.1
    allow_abundance_abundance: bool = False
    threads: int = 2
    timeout_seconds: float = 3600.0

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first out-of-range field."""
        checks = [
            ("power", self.power is None or 1 <= self.power <= 30, "in [1, 30] or none"),
            ("network_type", self.network_type in ("unsigned", "signed", "signed hybrid"), "unsigned/signed"),
            ("rsquared_cut", 0 < self.rsquared_cut < 1, "in (0, 1)"),
            ("min_module_size", self.min_module_size >= 2, ">= 2"),
            ("merge_cut_height", 0 <= self.merge_cut_height < 1, "in [0, 1)"),
            ("deep_split", 0 <= self.deep_split <= 4, "in 0..4"),
            ("max_block_size", self.max_block_size >= 100, ">= 100"),
            ("min_gene_module_size", self.min_gene_module_size >= 2, ">= 2"),
            ("edge_min_tom", 0 < self.edge_min_tom <= 1, "in (0, 1]"),
            ("threads", self.threads >= 1, ">= 1"),
            ("timeout_seconds", self.timeout_seconds > 0, "> 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                msg = f"wgcna.{name} must be {expected}; found {getattr(self, name)!r}"
                raise InputError(msg)


@register("wgcna")
class WgcnaNetworkModel:
    """R's ``blockwiseModules`` on the feature matrix, through :mod:`isograph.rbridge`."""

    name: ClassVar[str] = "wgcna"
    config_class: ClassVar[type] = WgcnaConfig

    def check_dependencies(self) -> None:
        """One line when Rscript or the WGCNA package is missing."""
        check_r_packages(["WGCNA"])

    def fit(self, features: FeatureSet, *, config: WgcnaConfig, seed: int = 0) -> BackendResult:
        """Modules (and, in one block, TOM edges) of a feature set; see the module docstring."""
        config.validate()
        self.check_dependencies()
        start = time.perf_counter()
        raw = run_wgcna(features.matrix, config=config, seed=seed)
        gene_index = pd.Index(pd.unique(features.gene_ids))
        group = gene_index.get_indexer(features.gene_ids)
        eig = raw["eigengenes"]
        gene_label = _gene_labels(features.matrix, raw["labels"], group, len(gene_index), eig)
        labels, _ = relabel_by_size(gene_label, min_size=config.min_gene_module_size)
        names = np.array([f"M{m:03d}" for m in range(int(labels.max(initial=-1)) + 1)], dtype=object)
        module_id = np.array([names[v] if v >= 0 else UNASSIGNED for v in labels], dtype=object)
        modules = pd.DataFrame({"gene_id": gene_index.astype(str).to_numpy(), "module_id": module_id})
        edges = _gene_edges(
            raw["edges"],
            group,
            gene_index,
            features.feature_type == ABUNDANCE,
            allow_aa=config.allow_abundance_abundance,
        )
        info = raw["info"]
        calibration: dict[str, Any] = {
            "power": info["power"],
            "power_source": info["power_source"].replace("_", " "),
            "network_type": config.network_type,
            "soft_threshold_fit": raw["sft"],
            "n_blocks": int(info["n_blocks"]),
            "blockwise": int(info["n_blocks"]) > 1,
            "n_r_modules": len(np.unique(raw["labels"][raw["labels"] > 0])),
            "grey_feature_fraction": float(np.mean(raw["labels"] == 0)),
            "r_seconds": info["seconds"],
            "rscript_seconds": raw["rscript_seconds"],
        }
        diagnostics = {
            **{k: v for k, v in calibration.items() if k != "soft_threshold_fit"},
            "n_modules": len(names),
            "unassigned_fraction": float(np.mean(labels < 0)),
            "adapter_seconds": time.perf_counter() - start - raw["rscript_seconds"],
        }
        scores = pd.DataFrame(eig, index=features.sample_ids.astype(str), columns=raw["eigengene_names"])
        return BackendResult(
            modules=modules,
            edges=edges,
            diagnostics=diagnostics,
            calibration=calibration,
            sample_scores=scores,
            state={"feature_labels": raw["labels"], "power": float(info["power"])},
            log=raw["messages"],
        )


def run_wgcna(matrix: np.ndarray, *, config: WgcnaConfig, seed: int) -> dict[str, Any]:
    """Run the WGCNA script on ``matrix`` (n_samples, n_features); R's raw outputs.

    Returns
    -------
    dict
        ``labels`` (n_features,) R's numeric colours (0 grey), ``eigengenes`` (n_samples, n_ME),
        ``eigengene_names``, ``edges`` (feature pairs i < j with TOM, or empty), ``sft`` (list
        of dicts, empty when the power was given), ``info``, ``messages``, ``rscript_seconds``.
    """
    n_samples, n_features = matrix.shape
    with tempfile.TemporaryDirectory(prefix="isograph-wgcna-") as tmp:
        folder = Path(tmp)
        write_matrix(folder / "x.f32", matrix)
        write_params(
            folder / "params.tsv",
            {
                "n_samples": n_samples,
                "n_features": n_features,
                "power": config.power,
                "network_type": config.network_type,
                "rsquared_cut": config.rsquared_cut,
                "min_module_size": config.min_module_size,
                "merge_cut_height": config.merge_cut_height,
                "deep_split": config.deep_split,
                "max_block_size": config.max_block_size,
                "edge_min_tom": config.edge_min_tom,
                "edges": True,
                "threads": config.threads,
                "seed": int(seed) % 2**31,
            },
        )
        result = run_r(WGCNA_SCRIPT, folder, timeout=config.timeout_seconds, what="WGCNA blockwiseModules")
        labels = np.loadtxt(folder / "labels.txt", dtype=np.int64, ndmin=1)
        if labels.shape != (n_features,):
            msg = f"WGCNA returned {labels.size} labels for {n_features} features"
            raise RuntimeError(msg)
        eig_table = pd.read_csv(folder / "eigengenes.tsv", sep="\t")
        info = dict(line.split(" ", 1) for line in (folder / "info.txt").read_text().splitlines())
        sft = (
            pd.read_csv(folder / "sft.tsv", sep="\t").to_dict("records")
            if (folder / "sft.tsv").exists()
            else []
        )
        edge_path = folder / "edges.tsv"
        edges = (
            pd.read_csv(edge_path, sep="\t")
            if edge_path.exists()
            else pd.DataFrame({"i": [], "j": [], "tom": []})
        )
    return {
        "labels": labels,
        "eigengenes": eig_table.to_numpy(dtype=np.float64),
        "eigengene_names": [str(c) for c in eig_table.columns],
        "edges": edges,
        "sft": sft,
        "info": {
            "power": float(info["power"]),
            "power_source": info["power_source"],
            "n_blocks": int(info["n_blocks"]),
            "seconds": float(info["seconds"]),
            "sft_seconds": float(info["sft_seconds"]),
        },
        "messages": result.messages,
        "rscript_seconds": result.seconds,
    }


def _gene_labels(
    matrix: np.ndarray, labels: np.ndarray, group: np.ndarray, n_genes: int, eigengenes: np.ndarray
) -> np.ndarray:
    # Features -> genes: a gene takes the colour of its assigned feature with the larger |kME|
    # against that colour's eigengene. Colours are R's (1 = largest); grey 0 -> -1.
    out = np.full(n_genes, -1, dtype=np.int64)
    assigned = np.flatnonzero(labels > 0)
    if assigned.size == 0:
        return out
    colours = np.unique(labels[assigned])
    x = np.asarray(matrix, dtype=np.float64)[:, assigned]
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    kme = np.zeros(assigned.size)
    # MEs columns are in R's order; recompute each colour's first PC here to stay independent of it.
    for colour in colours:
        cols = labels[assigned] == colour
        u, _, _ = np.linalg.svd(x[:, cols], full_matrices=False)
        pc = u[:, 0]
        kme[cols] = np.abs(pc @ x[:, cols]) / np.sqrt(x.shape[0])
    table = pd.DataFrame({"gene": group[assigned], "label": labels[assigned] - 1, "kme": kme})
    table = table.sort_values(["gene", "kme"], ascending=[True, False], kind="mergesort").drop_duplicates(
        "gene"
    )
    out[table["gene"].to_numpy()] = table["label"].to_numpy()
    return out


def _gene_edges(
    edges: pd.DataFrame, group: np.ndarray, gene_index: pd.Index, is_abundance: np.ndarray, *, allow_aa: bool
) -> pd.DataFrame:
    names = gene_index.astype(str).to_numpy()
    i = edges["i"].to_numpy(dtype=np.int64)
    j = edges["j"].to_numpy(dtype=np.int64)
    keep = group[i] != group[j]
    if not allow_aa:
        keep &= ~(is_abundance[i] & is_abundance[j])
    a, b = np.minimum(group[i], group[j])[keep], np.maximum(group[i], group[j])[keep]
    table = pd.DataFrame({"a": a, "b": b, "w": edges["tom"].to_numpy(dtype=np.float64)[keep]})
    table = table.sort_values(["a", "b", "w"], ascending=[True, True, False], kind="mergesort")
    table = table.drop_duplicates(["a", "b"])
    return pd.DataFrame(
        {
            "gene_a": names[table["a"].to_numpy()].astype(object),
            "gene_b": names[table["b"].to_numpy()].astype(object),
            "weight": table["w"].to_numpy(dtype=np.float64),
        }
    )
