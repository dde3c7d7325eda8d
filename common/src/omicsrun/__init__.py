"""Plumbing shared by IsoGraph and PerturbFM; it holds no biology.

- :mod:`omicsrun.errors`: the one exception type the command lines turn into exit status 2.
- :mod:`omicsrun.commit`: the one way an output is committed (see below).
- :mod:`omicsrun.atomic`: atomic file writes; ``output_dir`` is :func:`omicsrun.commit.commit_dir`.
- :mod:`omicsrun.validate`: edge checks of numbers (type, finiteness, range), JSON field
  types, files confined to a folder, and the CLI guard (no NaN/inf floats, no negative seeds).
- :mod:`omicsrun.readers`: JSON objects and ``.npz`` archives read safely (never unpickled).
- :mod:`omicsrun.hashing`: content hashes of files, folders, arrays and JSON values.
- :mod:`omicsrun.manifest`: versions and run manifests recorded beside every output.
- :mod:`omicsrun.cli`: run a Typer app so that user errors (ours, Click usage errors, a disk
  that refuses a write) become one line on stderr and exit status 2.
- :mod:`omicsrun.parallel`: fan independent tasks out (in process, local Dask, a scheduler, SLURM).
- :mod:`omicsrun.paths` / :mod:`omicsrun.testing`: the shared real-data folder (runtime / tests).

How a command writes its output (every command of both tools does it this way)
---------------------------------------------------------------------------------
Open one context manager *before* the work, write everything into the folder it yields,
and pass what the command reads as ``inputs``::

    from omicsrun.atomic import output_dir

    with output_dir(out, overwrite=overwrite, what="fit output", inputs=[bundle]) as build:
        result = compute(...)          # raises -> nothing written, the lock released
        write_result(result, build)    # a library writer calling output_dir(build) again
                                       # writes straight into the build folder

Before the block runs it refuses (one :class:`InputError` line, exit 2): an output that is,
holds or lies inside an input; an existing result without ``overwrite``; a path under a
file; a read-only or full file system; an output another live process is writing (an
exclusive ``flock``). The result is built in ``.<name>.<pid>-<token>.tmp`` beside the target
and swapped in only when the block succeeds, so an earlier result survives any failure or
``kill -9``; the next run on the same target cleans what a killed run left. For one file use
:func:`omicsrun.commit.commit_file`; for a new run folder whose name may be taken,
:func:`omicsrun.commit.claim_unique_dir` (``name``, ``name-2``...). Paths recorded during the
build can be mapped to their final place with :func:`omicsrun.commit.final_path`.
"""

from omicsrun.errors import InputError

__all__ = ["InputError"]
__version__ = "0.1.0"
