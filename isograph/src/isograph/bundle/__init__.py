"""Dataset bundles: the validated hub object and its on-disk folder format."""

from isograph.bundle.io import read_bundle, write_bundle
from isograph.bundle.model import TRUTH_KINDS, Bundle

__all__ = ["TRUTH_KINDS", "Bundle", "read_bundle", "write_bundle"]
