"""Training losses shared by the trackers: focal loss on heat maps, heat-map targets; box losses (GIoU,
L1) come from :mod:`lib.utils.box_ops` and torch."""

from .focal_loss import FocalLoss
from .heatmap import draw_gaussian, gaussian2d, gaussian_radius, generate_heatmap

__all__ = ["FocalLoss", "generate_heatmap", "gaussian_radius", "gaussian2d", "draw_gaussian"]
