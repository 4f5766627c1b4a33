"""Our trackers as TraX servers for the VOT toolkit (``vot-toolkit`` on PyPI): the loop behind
``tracking/vot_tracker.py``, as pytracking's VOT integration has it.

The toolkit starts the tracker process (the ``command`` of ``trackers.ini``) and talks TraX to it over its standard
input/output: an ``INITIALIZE`` request carries the first frame (a file path) and the target region(s), every
``FRAME`` request the next frame; the tracker answers each with the region it tracks.

* Regions: the server accepts rectangles and polygons. A rectangle is the box ``[x, y, w, h]`` (xywh pixels); a
  polygon is reduced to its axis-aligned min/max box (:func:`lib.test.evaluation.annotations.polygon_to_box`), the
  reduction of the VOT toolkit's own polygon-to-rectangle conversion and of our VOT dataset loader, so the tracker
  starts from the box ``tracking/test.py --dataset vot18`` starts from. Answers are rectangles, with the tracker's
  score (:class:`lib.api.TrackResult`) as the ``confidence`` property where it has one.
* Objects: the server declares itself multi-object and runs one tracker per object, sharing the network
  (``BaseTracker.new_slot``); VOT's single-target sequences use one. (vot-toolkit 0.9.0 refuses the reset-based
  ``supervised`` experiments of single-object TraX trackers; see the README.)
"""

from __future__ import annotations

from typing import Any, List

from lib.utils.errors import UserError

__all__ = ["require_trax", "region_to_box", "serve"]


def require_trax():
    """Import and return the ``trax`` module (PyPI ``vot-trax``).

    Raises:
        UserError: it is not installed (says how to install it).
    """
    try:
        import trax
        import trax.server  # noqa: F401
    except ImportError as exc:
        raise UserError(f"the TraX library is not installed ({exc}); install it with: pip install vot-trax") from None
    return trax


def region_to_box(region) -> List[float]:
    """A TraX region as the box ``[x, y, w, h]`` (xywh pixels).

    Rectangles give their bounds; polygons their axis-aligned min/max box. (The server accepts only these two; the
    client converts other regions before sending them.)

    Raises:
        ValueError: another region type.
    """
    from lib.test.evaluation.annotations import polygon_to_box

    trax = require_trax()
    kind = region.type
    if kind == trax.Region.RECTANGLE:
        return [float(v) for v in region.bounds()]
    if kind == trax.Region.POLYGON:
        return polygon_to_box([region[i] for i in range(region.size())])
    raise ValueError(f"a TraX region of type {kind} has no box")


def _frame(request) -> Any:
    from lib.utils.image import imread_rgb

    return imread_rgb(request.image["color"].path())


def serve(tracker, name: str = "", log: bool = False) -> int:
    """Answer TraX requests on this process's standard input/output with ``tracker`` until the client quits.

    Args:
        tracker: a :class:`lib.api.ApiTracker` (more objects get copies sharing its network).
        name: the tracker name the server reports to the client.
        log: TraX protocol log on standard error.

    Returns:
        the number of frames tracked.
    """
    from lib.api import ApiTracker

    trax = require_trax()
    from trax import Image, Region
    from trax.server import Server

    def one_more(index: int) -> ApiTracker:
        if index == 0:
            return tracker
        return ApiTracker(tracker.tracker.new_slot(), tracker.dataset)

    def answer(boxes_scores) -> list:
        out = []
        for box, score in boxes_scores:
            props = {} if score is None else {"confidence": float(score)}
            out.append((trax.Rectangle.create(*box), props))
        return out

    frames = 0
    trackers: List[ApiTracker] = []
    with Server([Region.RECTANGLE, Region.POLYGON], [Image.PATH], ["color"], tracker_name=name, multiobject=True,
                log=log) as server:
        while True:
            request = server.wait()
            if request.type == trax.TraxStatus.QUIT:
                break
            image = _frame(request)
            objects = request.objects or []
            if request.type == trax.TraxStatus.INITIALIZE:
                trackers = []
            results = []
            if request.type == trax.TraxStatus.FRAME:
                for t in trackers:
                    r = t.track(image)
                    results.append((r.box, r.score))
                frames += 1
            for region, _props in objects:  # new objects (all of them on INITIALIZE)
                t = one_more(len(trackers))
                first = t.initialize(image, region_to_box(region))
                trackers.append(t)
                results.append((first.box, None))
            server.status(answer(results))
    return frames
