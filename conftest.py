"""Repository-wide pytest set-up.

With ``--import-mode=importlib`` pytest names a test module after its path
(``perturbfm.tests.eval.test_x``) and would create empty ``perturbfm``/``isograph`` packages
that hide the installed ones; importing the real packages first prevents that.
"""

import matplotlib

matplotlib.use("Agg")

import isograph  # noqa: F401
import omicsrun  # noqa: F401
import perturbfm  # noqa: F401
