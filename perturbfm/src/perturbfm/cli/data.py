"""Commands: (to be written)."""

from perturbfm.cli.app import app  # noqa: F401
