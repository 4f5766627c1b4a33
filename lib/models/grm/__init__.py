"""GRM (Gao et al., CVPR 2023): OSTrack's one-stream ViT with generalized relation modelling (adaptive
token division).

Importing this package registers the ``grm`` network (net type ``GRM``) with
:func:`lib.models.register_network`.
"""

from .division import DivisionAttention, softmax_with_policy
from .grm import GRM, GRMVisionTransformer, build_grm, example_inputs, generate_mask_cond

__all__ = ["GRM", "GRMVisionTransformer", "DivisionAttention", "build_grm", "example_inputs", "generate_mask_cond",
           "softmax_with_policy"]
