"""The entry scripts, run as ``python tracking/<script>.py`` or, after ``pip install -e .``, as the console
commands of :mod:`tracking.cli` (``tracking-test``, ``tracking-train``, ...).

The scripts start with ``import _init_paths`` (which puts the project root on ``sys.path`` when a script is run
by path). Imported as ``tracking.<script>`` that top-level name would not exist, so the package registers its own
``tracking._init_paths`` under it: the scripts work both ways unchanged.
"""

import sys as _sys

from . import _init_paths as _paths

_sys.modules.setdefault("_init_paths", _paths)
