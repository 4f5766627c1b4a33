"""Training losses shared by the trackers: focal loss on heat maps, heat-map targets; the GIoU + L1 box
losses of every actor (:func:`box_regression_losses`, built on :mod:`lib.utils.box_ops`); the sigmoid focal
loss and "+1" IoU loss of dense score maps (SparseTT)."""

from .box import box_regression_losses
from .focal_loss import FocalLoss
from .heatmap import draw_gaussian, gaussian2d, gaussian_radius, generate_heatmap
from .iou_loss import IoULoss, paired_iou_plus1
from .sigmoid_focal_loss import SigmoidFocalLoss

__all__ = ["box_regression_losses", "FocalLoss", "generate_heatmap", "gaussian_radius", "gaussian2d", "draw_gaussian",
           "SigmoidFocalLoss", "IoULoss", "paired_iou_plus1"]
