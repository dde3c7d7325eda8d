#!/usr/bin/env bash
# Installs R and WGCNA from Debian's packages when Rscript or WGCNA is missing.
# Needs root and apt-get; elsewhere it says what to install and carries on (WGCNA is optional).
set -euo pipefail
# Headless chromium renders the PerturbFM report and leaderboard in the `browser` tests.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "warning: chromium not found; the browser tests need it (apt-get install chromium)" >&2
  fi
fi
have_wgcna() { command -v Rscript >/dev/null 2>&1 && Rscript -e 'suppressMessages(library(WGCNA))' >/dev/null 2>&1; }
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
