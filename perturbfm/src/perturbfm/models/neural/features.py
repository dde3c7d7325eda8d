"""Dataset rows -> model inputs, learned from training rows only.

Intervention encoding
---------------------
A perturbation is the set of its genes (``obs["pert_genes"]``). Its *intervention mask* is a
vector in gene space (``var`` order), the sum over its genes of:

- the one-hot vector of the gene, when the gene is measured (in ``var``);
- otherwise the gene's *training footprint*: the mean training delta of the training
  perturbations that contain it, minus the mean training delta of all perturbations (so
  the shared systematic shift is not mistaken for the gene's effect), scaled to unit
  Euclidean norm. This is the gene-space analogue of the linear baseline's "training"
  embedding, and it is what lets graph propagation and the operator act on CRISPR targets
  that are not among the measured genes (most of the devel set);
- for a gene neither measured nor seen in training: zero (no intervention signal; the
  seed's rule for unknown genes), or, when :meth:`Featurizer.inputs` gets an
  ``unseen_gene_seed``, a *sampled footprint*: a Gaussian draw with the mean and covariance
  of the training footprints (a random mixture of them around their mean, so it lies where
  the training footprints lie), scaled to unit norm, drawn deterministically from (seed,
  gene name). Members of an ensemble (each its own seed)
  then disagree on genes none of them has data on (see ``unseen_inputs`` in
  :mod:`perturbfm.models.neural.models`).

Every footprint is computed from the training rows given to :meth:`Featurizer.fit` only.
Control expression is standardised per gene with the training controls' mean and standard
deviation; deltas are scaled per gene by the standard deviation of the training deltas.
A context is *seen* only when it has perturbed training rows: its embedding is then trained.
Seen contexts get an index 0..C-1; every other context gets -1 (the networks then use the mean
of the learned context embeddings, or a draw around it). Control cells do not make a context
seen: on a ``context_ood`` split the held-out cell line's controls are training rows, and an
index of its own would select an embedding that no perturbed cell ever trained (its random
initialisation).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perturbfm.data.dataset import PerturbDataset

_SD_FLOOR = 1e-3


def _gene_incidence(gene_lists: np.ndarray, index: pd.Index) -> sp.csr_matrix:
    """(n_rows, len(index)) counts of each row's genes that are in ``index`` (others dropped)."""
    n = len(gene_lists)
    long = pd.DataFrame({"row": np.arange(n), "gene": gene_lists}).explode("gene")
    long = long[long["gene"].notna()]
    pos = index.get_indexer(pd.Index(long["gene"].to_numpy(dtype=object)))
    keep = pos >= 0
    rows = long["row"].to_numpy(dtype=np.int64)[keep]
    return sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, pos[keep])), shape=(n, len(index)))


def _moments(ds: PerturbDataset, rows: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and population standard deviation of rows ``rows`` (row blocks, float64)."""
    n = rows.size
    if n == 0:
        return np.zeros(ds.n_genes), np.zeros(ds.n_genes)
    mean, var, _ = ds.group_moments(rows, np.zeros(n, dtype=np.int64), 1, which)
    pop_var = np.zeros(ds.n_genes) if n < 2 else var[0] * (n - 1) / n
    return mean[0], np.sqrt(np.maximum(pop_var, 0.0))


@dataclass
class Featurizer:
    """Fitted input encoding (see the module docstring). Build with :meth:`fit`."""

    x_mean: np.ndarray  # (G,)
    x_sd: np.ndarray  # (G,)
    delta_sd: np.ndarray  # (G,)
    contexts: pd.Index
    measured: pd.Index  # var
    footprint_genes: pd.Index  # unmeasured genes with a training footprint
    footprints: np.ndarray  # (n_footprint_genes, G), float32

    @classmethod
    def fit(cls, ds: PerturbDataset, train_idx: np.ndarray) -> Featurizer:
        """Learn the encoding from training rows ``train_idx`` (controls and perturbed)."""
        ctrl = train_idx[ds.is_control[train_idx]]
        pert = train_idx[~ds.is_control[train_idx]]
        x_rows = ctrl if ctrl.size >= 2 else train_idx
        # Blockwise moments (population sd, as numpy's std): no dense copy of the training rows.
        x_mean, x_sd = _moments(ds, x_rows, "control")
        delta_mean, delta_sd = _moments(ds, pert, "delta")
        measured = pd.Index(ds.var)
        genes = ds.obs["pert_genes"].to_numpy()[pert]
        all_genes = pd.Index(pd.Series(genes).explode().dropna().unique(), dtype=object)
        unmeasured = all_genes[measured.get_indexer(all_genes) < 0].sort_values()
        footprints = np.zeros((len(unmeasured), ds.n_genes), dtype=np.float32)
        if len(unmeasured):
            inc = _gene_incidence(genes, unmeasured)  # (n_pert, n_unmeasured)
            counts = np.asarray(inc.sum(axis=0)).ravel()
            sums = np.zeros((len(unmeasured), ds.n_genes))
            for start, stop, block in ds.iter_rows(pert, "delta"):
                sums += np.asarray(inc[start:stop].T @ np.asarray(block, dtype=np.float64))
            mean_delta = sums / np.maximum(counts, 1)[:, None]
            centred = mean_delta - delta_mean
            norm = np.linalg.norm(centred, axis=1, keepdims=True)
            footprints = (centred / np.maximum(norm, 1e-12)).astype(np.float32)
        return cls(
            x_mean=x_mean.astype(np.float32),
            x_sd=np.maximum(x_sd, _SD_FLOOR).astype(np.float32),
            delta_sd=np.maximum(delta_sd, _SD_FLOOR).astype(np.float32),
            # Only contexts with perturbed training rows (module docstring): controls alone
            # leave a context's embedding untrained.
            contexts=pd.Index(sorted(ds.obs["context_id"].to_numpy()[pert].astype(str).tolist())).unique(),
            measured=measured,
            footprint_genes=unmeasured,
            footprints=footprints,
        )

    @property
    def n_contexts(self) -> int:
        return len(self.contexts)

    def sampled_footprints(self, genes: pd.Index, seed: int) -> np.ndarray:
        """Sampled footprints of ``genes`` (module docstring), (len(genes), G) float32.

        Gene g's draw depends on ``(seed, g)`` only, so it is the same in every call and every
        row. With fewer than two training footprints (e.g. every perturbed gene measured)
        there is no spread to sample from and the rows are zero, as under ``"mean"``.
        """
        if len(self.footprint_genes) < 2 or not len(genes):
            return np.zeros((len(genes), self.footprints.shape[1]), dtype=np.float32)
        centre = self.footprints.mean(axis=0, dtype=np.float64)
        # N(centre, C) with C = D^T D / F, D the centred footprints: centre + D^T z / sqrt(F).
        centred = (self.footprints - centre) / np.sqrt(len(self.footprint_genes))
        weights = np.stack(
            [  # one short draw per unseen gene (a handful per split), seeded by (seed, gene)
                np.random.default_rng([int(seed), zlib.crc32(str(gene).encode())]).standard_normal(
                    len(self.footprint_genes)
                )
                for gene in genes
            ]
        )
        draws = centre + weights @ centred
        norms = np.maximum(np.linalg.norm(draws, axis=1, keepdims=True), 1e-12)
        return (draws / norms).astype(np.float32)

    def inputs(
        self, ds: PerturbDataset, idx: np.ndarray, *, unseen_gene_seed: int | None = None
    ) -> dict[str, np.ndarray]:
        """Arrays for rows ``idx``: ``x`` (n, G) standardised control, ``mask`` (n, G)
        intervention, ``context`` (n,) int64 (-1 unseen), ``n_known`` (n,) genes with a
        signal. ``unseen_gene_seed``: give genes without a signal a sampled footprint."""
        gene_lists = ds.obs["pert_genes"].to_numpy()[idx]
        meas = _gene_incidence(gene_lists, self.measured)
        mask = meas.toarray()
        n_known = np.asarray(meas.sum(axis=1)).ravel()
        if len(self.footprint_genes):
            foot = _gene_incidence(gene_lists, self.footprint_genes)
            mask += np.asarray(foot @ self.footprints)
            n_known += np.asarray(foot.sum(axis=1)).ravel()
        if unseen_gene_seed is not None:
            genes = pd.Index(pd.Series(gene_lists, dtype=object).explode().dropna().unique(), dtype=object)
            known = (self.measured.get_indexer(genes) >= 0) | (self.footprint_genes.get_indexer(genes) >= 0)
            unseen = genes[~known].sort_values()
            if len(unseen):
                mask += np.asarray(
                    _gene_incidence(gene_lists, unseen) @ self.sampled_footprints(unseen, unseen_gene_seed)
                )
        x = (np.asarray(ds.rows(idx, "control"), dtype=np.float32) - self.x_mean) / self.x_sd
        context = self.contexts.get_indexer(ds.obs["context_id"].to_numpy()[idx].astype(str))
        return {
            "x": x.astype(np.float32),
            "mask": mask.astype(np.float32),
            "context": context.astype(np.int64),
            "n_known": n_known.astype(np.float32),
        }

    def target(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        """Scaled delta of rows ``idx``, (n, G) float32."""
        return (np.asarray(ds.rows(idx, "delta"), dtype=np.float32) / self.delta_sd).astype(np.float32)
