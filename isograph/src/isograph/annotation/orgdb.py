"""Read-only access to Bioconductor ``org.*.eg.db`` SQLite files (offline gene annotation).

Debian's ``r-bioc-org.hs.eg.db`` (and ``r-bioc-org.mm.eg.db`` where it exists) install one
SQLite file with Entrez ids, symbols, Ensembl gene ids, GO and KEGG annotations. This module
is the only reader of that file in the project: gene names at import, names in output
tables and the gene sets of the enrichment all come from here. Nothing is downloaded.

GO term names come from ``GO.db``'s SQLite file when it is installed (Debian
``r-bioc-go.db``); without it terms keep their ids. The org package has no KEGG titles:
they come from ``kegg_pathways.tsv`` shipped with IsoGraph (map number -> title, one for
every pathway id of the installed org.Hs.eg.db); an id it lacks keeps its id as its name.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from omicsrun import InputError

Species = Literal["human", "mouse"]
GeneSetSource = Literal["go_bp", "kegg"]

_R_LIBRARIES = (
    Path("/usr/lib/R/site-library"),
    Path("/usr/local/lib/R/site-library"),
    Path("/usr/lib/R/library"),
)
_PACKAGES: dict[str, tuple[str, str, str]] = {
    # species -> (package folder, sqlite file, KEGG organism prefix)
    "human": ("org.Hs.eg.db", "org.Hs.eg.sqlite", "hsa"),
    "mouse": ("org.Mm.eg.db", "org.Mm.eg.sqlite", "mmu"),
}
_KEGG_NAMES_FILE = "kegg_pathways.tsv"
_KEGG_NAMES_HEADER = "# isograph-kegg-pathway-names\tversion 1"
_ENSEMBL_GENE = re.compile(r"^(ENS[A-Z]*G\d{6,})(\.\d+)?(_PAR_Y)?$")


def _library_dirs() -> list[Path]:
    extra = os.environ.get("ISOGRAPH_R_LIBS", "")
    return [Path(p) for p in extra.split(os.pathsep) if p] + list(_R_LIBRARIES)


def find_orgdb(species: Species = "human") -> Path | None:
    """Path of the installed ``org.*.eg.sqlite`` for ``species``, or ``None`` when absent.

    Searched in ``$ISOGRAPH_R_LIBS`` (``os.pathsep``-separated R library folders) and then
    in Debian's R library folders.
    """
    if species not in _PACKAGES:
        msg = f"species must be one of {sorted(_PACKAGES)}; found {species!r}"
        raise InputError(msg)
    package, filename, _ = _PACKAGES[species]
    for lib in _library_dirs():
        path = lib / package / "extdata" / filename
        if path.is_file():
            return path
    return None


def _find_godb() -> Path | None:
    for lib in _library_dirs():
        path = lib / "GO.db" / "extdata" / "GO.sqlite"
        if path.is_file():
            return path
    return None


def strip_version(ids: Iterable[str]) -> list[str]:
    """Ensembl ids without their ``.N`` version (``ENSG00000141510.16`` -> ``ENSG00000141510``)."""
    out = []
    for value in ids:
        text = str(value)
        match = _ENSEMBL_GENE.match(text)
        out.append(match.group(1) if match else text.split(".")[0] if text.startswith("ENS") else text)
    return out


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only URI: the installed file belongs to the system package and is never written.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


@dataclass(eq=False)
class OrgDb:
    """An opened ``org.*.eg.db`` SQLite file.

    Use :meth:`open` (by species, or by path) rather than the constructor.
    """

    path: Path
    kegg_prefix: str = "hsa"
    species: str = "human"
    _genes: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def open(cls, source: Species | str | os.PathLike[str] = "human") -> OrgDb:
        """Open the database of a species (``"human"``, ``"mouse"``) or an explicit SQLite path.

        Raises
        ------
        InputError
            When the species' package is not installed or the path is not an org.*.eg SQLite.
        """
        if isinstance(source, str) and source in _PACKAGES:
            path = find_orgdb(source)  # type: ignore[arg-type]
            if path is None:
                package = _PACKAGES[source][0]
                debian = "r-bioc-" + package.lower()
                msg = (
                    f"no {package} SQLite file found in {[str(p) for p in _library_dirs()]}; "
                    f"install Debian's {debian} (tools/install-system-deps.sh) or set ISOGRAPH_R_LIBS"
                )
                raise InputError(msg)
            return cls(path=path, kegg_prefix=_PACKAGES[source][2], species=source)
        path = Path(source)
        if not path.is_file():
            msg = f"annotation database {str(path)!r} does not exist; expected an org.*.eg.sqlite file"
            raise InputError(msg)
        with _connect(path) as con:
            try:
                meta = dict(con.execute("SELECT name, value FROM metadata").fetchall())
            except sqlite3.DatabaseError as exc:
                msg = f"{str(path)!r} is not an org.*.eg.db SQLite file ({exc})"
                raise InputError(msg) from None
        organism = str(meta.get("ORGANISM", ""))
        species = "mouse" if organism == "Mus musculus" else "human"
        return cls(path=path, kegg_prefix=_PACKAGES[species][2], species=species)

    def _query(self, sql: str) -> pd.DataFrame:
        with _connect(self.path) as con:
            return pd.read_sql_query(sql, con)

    def genes(self) -> pd.DataFrame:
        """Every Entrez gene: ``entrez_id``, ``symbol``, ``description`` (cached)."""
        if self._genes is None:
            self._genes = self._query(
                "SELECT g._id AS _id, g.gene_id AS entrez_id, i.symbol AS symbol, i.gene_name AS description "
                "FROM genes g JOIN gene_info i ON g._id = i._id"
            )
        return self._genes

    def map_ids(self, ids: Sequence[str]) -> pd.DataFrame:
        """Map Ensembl gene ids (with or without version), symbols or Entrez ids to genes.

        Parameters
        ----------
        ids
            Query ids, shape (n,). Each is tried as an Ensembl gene id (version stripped), then
            as an Entrez id (digits), then as an official symbol.

        Returns
        -------
        pandas.DataFrame
            One row per query, in order: ``query``, ``entrez_id``, ``symbol``, ``description``
            (NaN where unmapped). An Ensembl id linked to several Entrez genes takes the
            lowest Entrez id, so the mapping is deterministic.
        """
        queries = pd.Series([str(i) for i in ids], dtype=object)
        genes = self.genes()
        ensembl = self._query("SELECT _id, ensembl_id FROM ensembl")
        ensembl = (
            ensembl.merge(genes[["_id", "entrez_id"]], on="_id")
            .assign(entrez_num=lambda t: t["entrez_id"].astype(int))
            .sort_values(["ensembl_id", "entrez_num"])
            .drop_duplicates("ensembl_id")
        )
        by_ensembl = pd.Series(ensembl["_id"].to_numpy(), index=ensembl["ensembl_id"].to_numpy())
        by_entrez = pd.Series(genes["_id"].to_numpy(), index=genes["entrez_id"].astype(str).to_numpy())
        by_symbol = pd.Series(genes["_id"].to_numpy(), index=genes["symbol"].to_numpy())
        by_symbol = by_symbol[~by_symbol.index.duplicated()]
        stripped = pd.Series(strip_version(queries), dtype=object)
        internal = stripped.map(by_ensembl)
        internal = internal.fillna(queries.map(by_entrez))
        internal = internal.fillna(queries.map(by_symbol))
        table = genes.set_index("_id")[["entrez_id", "symbol", "description"]]
        found = table.reindex(internal.to_numpy())
        return pd.DataFrame(
            {
                "query": queries.to_numpy(),
                "entrez_id": found["entrez_id"].to_numpy(),
                "symbol": found["symbol"].to_numpy(),
                "description": found["description"].to_numpy(),
            }
        )

    def symbols(self, ids: Sequence[str]) -> pd.Series:
        """Gene symbol per query id (index = query id; NaN where unknown)."""
        mapped = self.map_ids(ids)
        return pd.Series(mapped["symbol"].to_numpy(), index=mapped["query"].to_numpy(), name="gene_name")

    def gene_sets(self, source: GeneSetSource) -> pd.DataFrame:
        """Gene-set memberships: ``term_id``, ``term_name``, ``entrez_id``.

        ``go_bp`` uses ``go_bp_all`` (annotations propagated to every ancestor term, as
        clusterProfiler's ``enrichGO`` does); ``kegg`` the pathway table, ids ``hsa04630``,
        names from :func:`kegg_pathway_names`. A term without a known name is named by its id.
        """
        # Plain table scans (no join, no DISTINCT in SQLite); ids are mapped and de-duplicated here.
        entrez = self.genes().set_index("_id")["entrez_id"]
        if source == "go_bp":
            raw = self._query("SELECT _id, go_id AS term_id FROM go_bp_all")
            table = pd.DataFrame(
                {"term_id": raw["term_id"].to_numpy(), "entrez_id": raw["_id"].map(entrez).to_numpy()}
            )
            table = table.drop_duplicates()
            table["term_name"] = table["term_id"].map(self.go_term_names())
        elif source == "kegg":
            raw = self._query("SELECT _id, path_id FROM kegg")
            table = pd.DataFrame(
                {
                    "term_id": self.kegg_prefix + raw["path_id"].astype(str),
                    "entrez_id": raw["_id"].map(entrez).to_numpy(),
                }
            ).drop_duplicates()
            numbers = table["term_id"].str.slice(len(self.kegg_prefix))
            table["term_name"] = numbers.map(kegg_pathway_names())
        else:
            msg = f"gene-set source must be 'go_bp' or 'kegg'; found {source!r}"
            raise InputError(msg)
        table["term_name"] = table["term_name"].fillna(table["term_id"])
        return table[["term_id", "term_name", "entrez_id"]]

    @staticmethod
    def go_term_names() -> pd.Series:
        """GO id -> term name from GO.db (empty when GO.db is not installed)."""
        path = _find_godb()
        if path is None:
            return pd.Series(dtype=object)
        with _connect(path) as con:
            terms = pd.read_sql_query("SELECT go_id, term FROM go_term", con)
        return pd.Series(terms["term"].to_numpy(), index=terms["go_id"].to_numpy())


@functools.cache
def _kegg_names() -> dict[str, str]:
    text = importlib.resources.files("isograph.annotation").joinpath(_KEGG_NAMES_FILE).read_text("utf-8")
    lines = text.splitlines()
    if not lines or lines[0] != _KEGG_NAMES_HEADER:
        msg = f"{_KEGG_NAMES_FILE} starts with {lines[:1]}; expected {_KEGG_NAMES_HEADER!r}"
        raise RuntimeError(msg)  # the shipped file itself is broken: a bug, not bad input
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
    return {path_id: name for path_id, name in rows[1:]}


def kegg_pathway_names() -> pd.Series:
    """KEGG pathway titles shipped with IsoGraph: map number (``"04110"``) -> ``"Cell cycle"``.

    Species-independent (``hsa04110`` and ``mmu04110`` are both map ``04110``). The table
    covers every pathway id of the installed org.Hs.eg.db.
    """
    names = _kegg_names()
    return pd.Series(list(names.values()), index=list(names), name="term_name", dtype=object)
