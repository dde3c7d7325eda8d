"""Commands: (to be written)."""

from isograph.cli.app import app  # noqa: F401
