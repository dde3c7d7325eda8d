"""Reading and writing bundle folders (the layout IsoGraph bundles already use).

Layout::

    manifest.json            dataset_name, suite_name, description, sample_table,
                             feature_tables [{filename, kind, n_rows}], matrices
                             [{assay_name, encoding: "dense_npz", filename, n_features,
                             n_samples}], truth_tables [filenames], provenance,
                             format = "isograph-bundle", format_version
    samples.parquet          sample_id + traits/covariates
    genes.parquet            gene_id (+ gene_name, chrom, start, end)
    transcripts.parquet      transcript_id, gene_id (+ length, transcript_name, transcript_type)
    transcript_counts.npz    key "data", (n_transcripts, n_samples)
    gene_counts.npz          optional, key "data", (n_genes, n_samples)
    truth_*.parquet          optional truth tables

Bundles written before ``format``/``format_version`` existed are accepted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isograph.bundle.model import TRUTH_KINDS, Bundle
from omicsrun import InputError
from omicsrun.atomic import output_dir, write_json
from omicsrun.hashing import sha256_dir
from omicsrun.readers import load_npz, read_json_object
from omicsrun.validate import check_number, check_type, inside

FORMAT_NAME = "isograph-bundle"
FORMAT_VERSION = 1
_ASSAY_FILES = {"transcript_counts": "transcript_counts.npz", "gene_counts": "gene_counts.npz"}
_KIND_TO_TRUTH = {kind: name for name, (_, kind) in TRUTH_KINDS.items()}


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / "manifest.json"
    if not root.is_dir():
        msg = f"bundle folder {root} does not exist; expected a folder holding manifest.json"
        raise InputError(msg)
    if not path.is_file():
        msg = f"bundle folder {root} has no manifest.json; expected a dataset bundle"
        raise InputError(msg)
    manifest = read_json_object(path, what="bundle manifest")
    for key in ("sample_table", "feature_tables", "matrices"):
        if key not in manifest:
            msg = f"{path} has no {key!r} key; keys are {sorted(manifest)}"
            raise InputError(msg)
    for key in ("feature_tables", "matrices"):
        entries = manifest[key]
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "filename" in e for e in entries):
            msg = f"{path}: {key!r} must be a list of objects with a 'filename'; found {entries!r:.200}"
            raise InputError(msg)
    _check_manifest_types(path, manifest)
    if manifest.get("format", FORMAT_NAME) != FORMAT_NAME:
        msg = f"{path} has format {manifest['format']!r}; expected {FORMAT_NAME!r} (a dataset bundle)"
        raise InputError(msg)
    version = manifest.get("format_version", FORMAT_VERSION)
    if isinstance(version, int) and version > FORMAT_VERSION:
        msg = f"{path} has format_version {version}; this IsoGraph reads versions up to {FORMAT_VERSION}"
        raise InputError(msg)
    return manifest


def _check_manifest_types(path: Path, manifest: dict[str, Any]) -> None:
    """Every field the reader uses has its JSON type (a wrong type is one line, not a crash)."""
    where = f"{path}:"
    check_type(manifest["sample_table"], f"{where} 'sample_table'", str, "a file name string")
    for key in ("format", "dataset_name", "description", "suite_name"):
        if manifest.get(key) is not None:
            check_type(manifest[key], f"{where} {key!r}", str, "a string")
    if "format_version" in manifest:
        check_number(manifest["format_version"], f"{where} 'format_version'", low=1, integer=True)
    provenance = manifest.get("provenance", {}) or {}
    check_type(provenance, f"{where} 'provenance'", dict, "a JSON object")
    for key in ("traits", "covariates"):
        if provenance.get(key) is not None:
            check_type(provenance[key], f"{where} provenance {key!r}", str, "a comma-separated string")
    truth = manifest.get("truth_tables", [])
    check_type(truth, f"{where} 'truth_tables'", list, "a list of file names")
    for item in truth:
        check_type(item, f"{where} 'truth_tables' entry", str, "a file name string")
    for key in ("feature_tables", "matrices"):
        for entry in manifest[key]:
            check_type(entry["filename"], f"{where} {key!r} filename", str, "a file name string")
            for field in ("n_rows", "n_features", "n_samples"):
                if entry.get(field) is not None:
                    check_number(entry[field], f"{where} {key!r} {field}", low=0, integer=True)
            for field in ("kind", "assay_name", "encoding"):
                if entry.get(field) is not None:
                    check_type(entry[field], f"{where} {key!r} {field}", str, "a string")


def _read_table(root: Path, filename: str) -> pd.DataFrame:
    path = inside(root, filename, what="manifest entry")
    if not path.is_file():
        msg = f"manifest names {filename!r} but {path} does not exist"
        raise InputError(msg)
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        msg = f"{path} is not a readable parquet table: {err}"
        raise InputError(msg) from err


def _read_matrix(root: Path, entry: dict[str, Any]) -> np.ndarray:
    filename = entry.get("filename")
    if entry.get("encoding", "dense_npz") != "dense_npz":
        msg = f"matrix {filename!r} has encoding {entry.get('encoding')!r}; expected 'dense_npz'"
        raise InputError(msg)
    path = inside(root, filename, what="manifest matrix")
    if not path.is_file():
        msg = f"manifest names matrix {filename!r} but {path} does not exist"
        raise InputError(msg)
    data = load_npz(path, what=f"matrix {filename!r}", required=("data",))["data"]
    if data.ndim != 2 or not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
        msg = f"{path} holds a {data.ndim}-D {data.dtype} array; expected a 2-D numeric count matrix"
        raise InputError(msg)
    expected = (entry.get("n_features"), entry.get("n_samples"))
    if None not in expected and tuple(data.shape) != expected:
        msg = f"{path} has shape {data.shape} but the manifest says {expected}"
        raise InputError(msg)
    return data


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read and validate a bundle folder.

    Raises
    ------
    InputError
        When the manifest, a table or a matrix is missing, malformed or inconsistent.
    """
    root = Path(path)
    manifest = _read_manifest(root)
    samples = _read_table(root, manifest["sample_table"])
    tables: dict[str, pd.DataFrame] = {}
    truth: dict[str, pd.DataFrame] = {}
    for entry in manifest["feature_tables"]:
        kind, filename = entry.get("kind"), entry.get("filename")
        table = _read_table(root, str(filename))
        if "n_rows" in entry and len(table) != entry["n_rows"]:
            msg = f"{filename} has {len(table)} rows but the manifest says {entry['n_rows']}"
            raise InputError(msg)
        if kind in _KIND_TO_TRUTH:
            truth[_KIND_TO_TRUTH[kind]] = table
        else:
            tables[str(kind)] = table
    for filename in manifest.get("truth_tables", []):
        name = Path(filename).stem
        if name in TRUTH_KINDS and name not in truth:
            truth[name] = _read_table(root, filename)
    for kind in ("gene", "transcript"):
        if kind not in tables:
            msg = f"manifest lists no feature table of kind {kind!r}; kinds are {sorted(tables)}"
            raise InputError(msg)
    matrices = {str(m.get("assay_name")): m for m in manifest["matrices"]}
    if "transcript_counts" not in matrices:
        msg = f"manifest lists no 'transcript_counts' matrix; assays are {sorted(matrices)}"
        raise InputError(msg)
    tx = _read_matrix(root, matrices["transcript_counts"])
    gc = _read_matrix(root, matrices["gene_counts"]) if "gene_counts" in matrices else None
    return Bundle(
        samples=samples,
        genes=tables["gene"],
        transcripts=tables["transcript"],
        transcript_counts=tx,
        gene_counts=gc,
        truth=truth,
        dataset_name=str(manifest.get("dataset_name", root.name)),
        suite_name=manifest.get("suite_name"),
        description=str(manifest.get("description", "")),
        provenance=manifest.get("provenance", {}) or {},
    )


def manifest_of(bundle: Bundle) -> dict[str, Any]:
    """The manifest a bundle is written with."""
    feature_tables = [
        {"filename": "genes.parquet", "kind": "gene", "n_rows": bundle.n_genes},
        {"filename": "transcripts.parquet", "kind": "transcript", "n_rows": bundle.n_transcripts},
    ]
    truth_files = []
    for name, table in sorted(bundle.truth.items()):
        filename = f"{name}.parquet"
        feature_tables.append({"filename": filename, "kind": TRUTH_KINDS[name][1], "n_rows": len(table)})
        truth_files.append(filename)
    matrices = [
        {
            "assay_name": "transcript_counts",
            "encoding": "dense_npz",
            "filename": _ASSAY_FILES["transcript_counts"],
            "n_features": bundle.n_transcripts,
            "n_samples": bundle.n_samples,
        }
    ]
    if bundle.gene_counts is not None:
        matrices.append(
            {
                "assay_name": "gene_counts",
                "encoding": "dense_npz",
                "filename": _ASSAY_FILES["gene_counts"],
                "n_features": bundle.n_genes,
                "n_samples": bundle.n_samples,
            }
        )
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dataset_name": bundle.dataset_name,
        "suite_name": bundle.suite_name,
        "description": bundle.description,
        "sample_table": "samples.parquet",
        "feature_tables": feature_tables,
        "matrices": matrices,
        "truth_tables": truth_files,
        "provenance": dict(bundle.provenance),
    }


def write_bundle(bundle: Bundle, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``bundle`` to a new folder atomically; refuse an existing one unless ``overwrite``."""
    with output_dir(path, overwrite=overwrite, what="bundle") as tmp:
        bundle.samples.to_parquet(tmp / "samples.parquet", index=False)
        bundle.genes.to_parquet(tmp / "genes.parquet", index=False)
        bundle.transcripts.to_parquet(tmp / "transcripts.parquet", index=False)
        np.savez_compressed(tmp / _ASSAY_FILES["transcript_counts"], data=bundle.transcript_counts)
        if bundle.gene_counts is not None:
            np.savez_compressed(tmp / _ASSAY_FILES["gene_counts"], data=bundle.gene_counts)
        for name, table in bundle.truth.items():
            table.to_parquet(tmp / f"{name}.parquet", index=False)
        write_json(tmp / "manifest.json", manifest_of(bundle))
    return Path(path)


def bundle_hash(path: str | os.PathLike[str]) -> str:
    """Content hash of a bundle folder (every file's name and bytes)."""
    return sha256_dir(path)
