"""Pack raw GOT-10k test results into the zip the evaluation server accepts (the raw results are kept):

    python lib/test/utils/transform_got10k.py --tracker_name ostrack --cfg_name vitb_384_mae_ce_32x4_ep300

See :mod:`lib.test.utils.submission` for the zip layout and the completeness check.
"""
import os
import sys

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from lib.test.utils.submission import main_transform  # noqa: E402

if __name__ == "__main__":
    sys.exit(main_transform("got10k"))
