"""IsoGraph: co-regulated modules of isoform switches from bulk RNA-seq transcript counts.

The hub object is :class:`isograph.bundle.Bundle` (a validated dataset bundle); every stage
(import, fixtures, features, backends, fit, benchmark, export) takes or returns one.
"""

from isograph.bundle import Bundle, read_bundle, write_bundle

__all__ = ["Bundle", "read_bundle", "write_bundle"]
__version__ = "0.1.0"
