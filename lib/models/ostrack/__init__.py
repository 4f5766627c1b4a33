"""OSTrack (Ye et al., ECCV 2022): one-stream ViT tracker with candidate elimination.

Importing this package registers the ``ostrack`` network (net type ``OSTrack``) with
:func:`lib.models.register_network`.
"""

from .ostrack import OSTrack, build_ostrack, example_inputs

__all__ = ["OSTrack", "build_ostrack", "example_inputs"]
