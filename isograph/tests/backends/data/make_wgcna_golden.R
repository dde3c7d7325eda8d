# Golden WGCNA output for isograph/tests/backends/test_wgcna.py, made by calling WGCNA directly
# (CSV in, no IsoGraph code involved). Regenerate with:
#   cd isograph/tests/backends/data && Rscript --vanilla make_wgcna_golden.R
# Input: wgcna_golden_input.csv (40 samples x 140 features, float32 values: three planted blocks of
# 40, 30 and 25 features sharing one factor each, signs mixed, plus 45 noise features; numpy seed
# 20261201)
suppressPackageStartupMessages(library(WGCNA))
disableWGCNAThreads()
dat <- as.matrix(read.csv("wgcna_golden_input.csv", check.names = FALSE))
sft <- pickSoftThreshold(dat, powerVector = c(1:10, seq(12, 20, 2)), networkType = "unsigned",
                         RsquaredCut = 0.85, verbose = 0)
fi <- sft$fitIndices
write.csv(data.frame(power = fi$Power, r2 = fi$SFT.R.sq * -sign(fi$slope), mean_k = fi$mean.k.),
          "wgcna_golden_sft.csv", row.names = FALSE)
for (type in c("unsigned", "signed")) {
  net <- blockwiseModules(dat, power = if (type == "unsigned") 6 else 12, networkType = type,
                          TOMType = type, minModuleSize = 20, mergeCutHeight = 0.15, deepSplit = 2,
                          maxBlockSize = 5000, numericLabels = TRUE, randomSeed = 7, verbose = 0)
  write.csv(data.frame(feature = colnames(dat), label = as.integer(net$colors)),
            paste0("wgcna_golden_labels_", type, ".csv"), row.names = FALSE)
}
