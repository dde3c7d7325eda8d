"""Plumbing shared by IsoGraph and PerturbFM; it holds no biology.

- :mod:`omicsrun.errors`: the one exception type the command lines turn into exit status 2.
- :mod:`omicsrun.atomic`: write-to-temporary-then-rename for files and whole folders.
- :mod:`omicsrun.hashing`: content hashes of files, folders, arrays and JSON values.
- :mod:`omicsrun.manifest`: versions and run manifests recorded beside every output.
- :mod:`omicsrun.cli`: run a Typer app so that our own errors become one line on stderr.
- :mod:`omicsrun.parallel`: fan independent tasks out (in process, local Dask, a scheduler, SLURM).
- :mod:`omicsrun.testing`: locate the shared real-data folder (fail under CI, skip elsewhere).
"""

from omicsrun.errors import InputError

__all__ = ["InputError"]
__version__ = "0.1.0"
