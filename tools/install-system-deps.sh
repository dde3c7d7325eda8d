#!/usr/bin/env bash
# Installs R and WGCNA from Debian's packages when Rscript or WGCNA is missing.
# Needs root and apt-get; elsewhere it says what to install and carries on (WGCNA is optional).
set -euo pipefail
have_wgcna() { command -v Rscript >/dev/null 2>&1 && Rscript -e 'suppressMessages(library(WGCNA))' >/dev/null 2>&1; }
# org.Hs.eg.db: its SQLite maps gene symbols to Ensembl ids (macrophage marker test, gene names).
if [ ! -f /usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite ] && [ "$(id -u)" = "0" ] \
    && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends r-bioc-org.hs.eg.db >/dev/null \
    || echo "warning: r-bioc-org.hs.eg.db not installed; the macrophage marker test falls back to fixed ids" >&2
fi
if have_wgcna; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing r-base-core and r-cran-wgcna with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends r-base-core r-cran-wgcna >/dev/null
  have_wgcna || { echo "WGCNA still not loadable after apt-get install" >&2; exit 1; }
else
  echo "warning: Rscript with WGCNA not found; install r-base-core and r-cran-wgcna for the wgcna backend" >&2
fi
