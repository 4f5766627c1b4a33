"""Any registered tracker as a ``got10k.trackers.Tracker``, so the GOT-10k toolkit's experiments (``ExperimentOTB``,
``ExperimentGOT10k``, ``ExperimentUAV123``, ``ExperimentNfS``, ``ExperimentTColor128``, ``ExperimentDTB70``, and
``ExperimentLaSOT`` in the toolkit versions that have it) run it::

    from got10k.experiments import ExperimentOTB
    from lib.test.toolkits.got10k_adapter import Got10kTracker

    tracker = Got10kTracker.load("ostrack", "vitb_256_mae_ce_32x4_ep300", checkpoint="OSTrack_ep0300.pth.tar")
    experiment = ExperimentOTB("data/OTB100", version=2015, result_dir="results", report_dir="reports")
    experiment.run(tracker)
    experiment.report([tracker.name])

The toolkit calls ``init(image, box)`` with a PIL image and its box ``[x, y, w, h]`` (xywh, pixels) and
``update(image)`` for every following frame (expecting the xywh box back); its ``track(img_files, box)`` runs a
whole sequence. Our ``track`` reads the frames with the project's decoder (:func:`lib.utils.image.imread_rgb`),
the one ``tracking/test.py`` uses, so its boxes equal ``tracking/test.py``'s result file before that file's
rounding to integers (``tests/test_got10k_toolkit.py``).

Needs ``got10k`` (0.1.3 imports ``six`` without declaring it: both are in requirements.txt).
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from lib.utils.errors import UserError

__all__ = ["Got10kTracker", "require_got10k"]


def require_got10k():
    """Import and return the ``got10k`` package.

    Raises:
        UserError: it is not installed (says how to install it).
    """
    try:
        import got10k
        import got10k.trackers  # noqa: F401
    except ImportError as exc:
        raise UserError(f"the GOT-10k toolkit is not installed ({exc}); install it with: "
                        f"pip install got10k==0.1.3 six") from None
    return got10k


def _base_class():
    return require_got10k().trackers.Tracker


class Got10kTracker(_base_class()):
    """A ``got10k.trackers.Tracker`` around a :class:`lib.api.ApiTracker`.

    Args:
        tracker: the tracker (:func:`lib.api.load_tracker`).
        name: the name the toolkit files results under (default ``<tracker>_<config>``).

    ``is_deterministic`` is True: our trackers have no randomness at test time, so ``ExperimentGOT10k`` runs one
    repetition instead of three.
    """

    def __init__(self, tracker, name: Optional[str] = None):
        super().__init__(name=name or f"{tracker.name}_{tracker.config}", is_deterministic=True)
        self.tracker = tracker

    @classmethod
    def load(cls, tracker: str, config: str, name: Optional[str] = None, **kwargs) -> "Got10kTracker":
        """Build the tracker with :func:`lib.api.load_tracker` (``checkpoint``, ``device``, ``precision``,
        ``dataset``, ``random_weights`` as there) and wrap it.

        Raises:
            UserError: see :func:`lib.api.load_tracker`.
        """
        from lib.api import load_tracker

        return cls(load_tracker(tracker, config, **kwargs), name=name)

    def init(self, image: Any, box: Sequence[float]) -> None:
        """Start on the first frame (a PIL image or RGB uint8 array) from ``box`` ``[x, y, w, h]`` (pixels)."""
        self.tracker.initialize(image, [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)])

    def update(self, image: Any) -> np.ndarray:
        """Track into the next frame; returns the box ``[x, y, w, h]`` (xywh pixels) as a float64 array ``(4,)``."""
        return np.asarray(self.tracker.track(image).box, dtype=np.float64)

    def track(self, img_files: Sequence[str], box: Sequence[float], visualize: bool = False) -> Tuple[np.ndarray,
                                                                                                   np.ndarray]:
        """Track a sequence of image files from the first-frame ``box`` (xywh pixels).

        Returns:
            ``(boxes (N, 4) float64 xywh pixels, times (N,) seconds)`` as the toolkit's ``Tracker.track``;
            ``boxes[0]`` is ``box``.
        """
        from lib.utils.image import imread_rgb

        boxes = np.zeros((len(img_files), 4))
        boxes[0] = box
        times = np.zeros(len(img_files))
        for f, path in enumerate(img_files):
            image = imread_rgb(path)
            start = time.time()
            if f == 0:
                self.init(image, box)
            else:
                boxes[f] = self.update(image)
            times[f] = time.time() - start
            if visualize:
                from got10k.utils.viz import show_frame
                from PIL import Image

                show_frame(Image.fromarray(image), boxes[f])
        return boxes, times
