# WGCNA blockwiseModules on a samples x features float32 matrix (the peer run of
# benchmarks/isograph_bench.py). Settings follow ../shared/design/ANCHORS.md (WGCNA defaults).
#
#   Rscript wgcna_peer.R MATRIX.f32 N_SAMPLES N_FEATURES N_THREADS LABELS.txt SECONDS.txt
#
# MATRIX.f32: little-endian float32, column-major (samples vary fastest).
# LABELS.txt: one integer module label per feature (0 = grey, not in a module).
# SECONDS.txt: elapsed seconds of blockwiseModules alone (library loading excluded).
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 6) stop("expected 6 arguments: MATRIX N_SAMPLES N_FEATURES N_THREADS LABELS SECONDS")
n_samples <- as.integer(args[2])
n_features <- as.integer(args[3])
suppressPackageStartupMessages(library(WGCNA))
enableWGCNAThreads(nThreads = as.integer(args[4]))
con <- file(args[1], "rb")
values <- readBin(con, what = "numeric", n = n_samples * n_features, size = 4, endian = "little")
close(con)
if (length(values) != n_samples * n_features) stop("matrix file is shorter than N_SAMPLES x N_FEATURES")
dat <- matrix(values, nrow = n_samples, ncol = n_features)
colnames(dat) <- paste0("f", seq_len(n_features))
start <- proc.time()[["elapsed"]]
net <- blockwiseModules(
  dat,
  power = 6, networkType = "unsigned", TOMType = "unsigned",
  minModuleSize = 20, mergeCutHeight = 0.15, deepSplit = 2, maxBlockSize = 5000,
  numericLabels = TRUE, saveTOMs = FALSE, verbose = 0
)
elapsed <- proc.time()[["elapsed"]] - start
writeLines(as.character(as.integer(net$colors)), args[5])
writeLines(format(elapsed, digits = 6), args[6])
