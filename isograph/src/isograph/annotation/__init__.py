"""Offline gene annotation: ids, symbols, GO and KEGG from Bioconductor's org.*.eg.db SQLite files."""

from isograph.annotation.names import attach_gene_names, gene_names_from_source, with_gene_names
from isograph.annotation.orgdb import OrgDb, find_orgdb, kegg_pathway_names, strip_version

__all__ = [
    "OrgDb",
    "attach_gene_names",
    "find_orgdb",
    "gene_names_from_source",
    "kegg_pathway_names",
    "strip_version",
    "with_gene_names",
]
