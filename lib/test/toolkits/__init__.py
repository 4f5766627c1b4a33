"""Adapters that let the official evaluation toolkits drive our trackers: the GOT-10k toolkit (``got10k`` on PyPI,
:mod:`.got10k_adapter`) and the VOT toolkit over TraX (``tracking/vot_tracker.py``, :mod:`.vot`)."""
