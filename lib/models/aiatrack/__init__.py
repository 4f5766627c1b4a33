"""AiATrack (ECCV 2022): network, AiA attention and IoU head. Registers the ``aiatrack`` script."""

from lib.models import register_network

from .aiatrack import AIATRACK, build_aiatrack, profiling_step, target_background_region
from .attention import AiAModule, CorrAttention, InnerAttention
from .head import IoUNet

__all__ = ["AIATRACK", "build_aiatrack", "profiling_step", "target_background_region", "AiAModule",
           "CorrAttention", "InnerAttention", "IoUNet"]

register_network("aiatrack", "AIATRACK")(build_aiatrack)
