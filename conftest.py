"""Repository-wide pytest set-up.

With ``--import-mode=importlib`` pytest names a test module after its path
(``perturbfm.tests.eval.test_x``) and would create empty ``perturbfm``/``isograph`` packages
that hide the installed ones; importing the real packages first prevents that.
"""

import matplotlib

matplotlib.use("Agg")

import os
import tempfile

import isograph  # noqa: F401
import omicsrun  # noqa: F401
import perturbfm  # noqa: F401

# Remembered file digests (omicsrun.hashing.sha256_file_cached) go to a folder of this test
# session, not the user's cache.
os.environ.setdefault("OMICSRUN_CACHE_DIR", tempfile.mkdtemp(prefix="omicsrun-cache-"))
