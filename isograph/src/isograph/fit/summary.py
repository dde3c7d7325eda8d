"""The short on-screen summary ``isograph fit`` prints: modules, sizes, top trait links."""

from __future__ import annotations

from typing import TYPE_CHECKING

from isograph.backends.base import UNASSIGNED

if TYPE_CHECKING:
    from isograph.fit.core import FitResult


def fit_summary(result: FitResult, *, n_sizes: int = 8, n_traits: int = 5) -> list[str]:
    """Lines describing a fit: module count and sizes, unassigned genes, strongest trait links,
    and the covariates regressed out of the features (log library size among them by default)."""
    labels = result.modules["module_id"].astype(str)
    sizes = labels[labels != UNASSIGNED].value_counts()
    shown = ", ".join(f"{m} {n}" for m, n in sizes.head(n_sizes).items())
    more = f", ... ({len(sizes) - n_sizes} more)" if len(sizes) > n_sizes else ""
    lines = [
        f"modules: {len(sizes)} ({shown}{more}); unassigned genes: {int((labels == UNASSIGNED).sum())}",
    ]
    traits = result.traits.dropna(subset=["pvalue"]).sort_values("pvalue").head(n_traits)
    if len(traits):
        hits = "; ".join(
            f"{row.module_id}~{row.trait} {row.test} {row.statistic:.3g} (q={row.qvalue:.2g})"
            for row in traits.itertuples()
        )
        lines.append(f"top trait links: {hits}")
    else:
        lines.append("top trait links: none tested")
    config = getattr(result, "config", None) or {}
    if "features" in config:
        regressed = list(config["features"].get("covariates", []))
        lines.append(f"regressed covariates: {', '.join(regressed) if regressed else 'none'}")
    return lines
