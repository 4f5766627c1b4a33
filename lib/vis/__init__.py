"""Visualisation: drawing boxes and score maps (:mod:`lib.vis.draw`), result playback
(:mod:`lib.vis.playback`) and the offline web assets of the visdom server (:mod:`lib.vis.visdom_assets`).
The live debug sink of the trackers is :mod:`lib.test.utils.debug`.
"""
