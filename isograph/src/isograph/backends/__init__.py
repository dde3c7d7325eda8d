"""Module-discovery backends behind one contract (see :mod:`isograph.backends.base`)."""

from isograph.backends.base import (
    UNASSIGNED,
    Backend,
    BackendResult,
    available_backends,
    get_backend,
    register,
)

__all__ = ["UNASSIGNED", "Backend", "BackendResult", "available_backends", "get_backend", "register"]
