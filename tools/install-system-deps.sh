#!/usr/bin/env bash
# Installs the system packages IsoGraph uses, from Debian, when they are missing:
#   r-base-core + r-cran-wgcna       (wgcna backend, R tests)
#   r-bioc-org.hs.eg.db, r-bioc-go.db (gene names, GO/KEGG enrichment; read with sqlite3)
#   r-bioc-org.mm.eg.db               (mouse; installed only where Debian has a candidate)
#   chromium                          (the browser tests of both tools' reports)
# (PerturbFM's `graphs build --from orgdb` reads the same org.Hs.eg.db file.)
# Needs root and apt-get; elsewhere it says what to install and carries on (all are optional).
set -euo pipefail
have_wgcna() { command -v Rscript >/dev/null 2>&1 && Rscript -e 'suppressMessages(library(WGCNA))' >/dev/null 2>&1; }
have_file() { [ -e "$1" ]; }
missing=()
have_wgcna || missing+=(r-base-core r-cran-wgcna)
have_file /usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite || missing+=(r-bioc-org.hs.eg.db)
have_file /usr/lib/R/site-library/GO.db/extdata/GO.sqlite || missing+=(r-bioc-go.db)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -eq 0 ] && have_file /usr/lib/R/site-library/org.Mm.eg.db/extdata/org.Mm.eg.sqlite; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} with apt-get" >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Mouse annotation: only where the distribution ships it.
  if apt-cache policy r-bioc-org.mm.eg.db 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get install -y -qq --no-install-recommends r-bioc-org.mm.eg.db >/dev/null
  fi
  have_wgcna || { echo "WGCNA still not loadable after apt-get install" >&2; exit 1; }
elif [ "${#missing[@]}" -gt 0 ]; then
  echo "warning: missing system packages: ${missing[*]} (install them with apt-get for the wgcna backend, gene names/enrichment and the browser test)" >&2
fi
