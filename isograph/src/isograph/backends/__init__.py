"""Module-discovery backends behind one contract (see :mod:`isograph.backends.base`)."""

from isograph.backends.base import (
    BACKEND_DIR,
    UNASSIGNED,
    Backend,
    BackendResult,
    FittedBackend,
    RawCounts,
    available_backends,
    check_backend_dependencies,
    get_backend,
    load_backend_state,
    register,
    save_backend_state,
)

__all__ = [
    "BACKEND_DIR",
    "UNASSIGNED",
    "Backend",
    "BackendResult",
    "FittedBackend",
    "RawCounts",
    "available_backends",
    "check_backend_dependencies",
    "get_backend",
    "load_backend_state",
    "register",
    "save_backend_state",
]
