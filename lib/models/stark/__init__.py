"""STARK networks (STARK-S, STARK-ST): registered as scripts ``stark_s`` (net_type ``STARKS``),
``stark_st1`` and ``stark_st2`` (net_type ``STARKST``; both stages build the same network).

``--checkpoint`` accepts official/toolkit files and mmtracking STARK files (renamed on load by
:func:`lib.models.stark.mmtracking.checkpoint_filter`).
"""

from lib.models import register_network

from .mmtracking import checkpoint_filter
from .profiling import profiling_step
from .stark_s import STARKS, build_starks
from .stark_st import STARKST, build_starkst

__all__ = ["STARKS", "STARKST", "build_starks", "build_starkst", "profiling_step"]

register_network("stark_s", "STARKS", checkpoint_filter=checkpoint_filter)(build_starks)
register_network("stark_st1", "STARKST", checkpoint_filter=checkpoint_filter)(build_starkst)
register_network("stark_st2", "STARKST", checkpoint_filter=checkpoint_filter)(build_starkst)
