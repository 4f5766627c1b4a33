"""What a tracker's network computes per frame, packaged for profiling (``tracking/profile_model.py``).

A network package may define ``profiling_step(net, cfg, device, dataset_name=None) -> ProfileStep`` when its
tracker does not call ``net(*example_inputs(cfg))`` once per frame: it does the once-per-sequence work
(template features, reference memories) and returns the per-frame call as a module, so that the latency,
the MAC count (thop hooks the modules it runs) and the tracker's own step are the same computation.
Packages without the hook are profiled as ``net(*example_inputs(cfg))`` (OSTrack, GRM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Tuple

from torch import nn

__all__ = ["ProfileStep", "StepModule"]


class StepModule(nn.Module):
    """``forward(*inputs) = fn(net, *inputs)``: one per-frame step of ``net`` as a module (its parameters are
    ``net``'s, so parameter and MAC counts are those of the network).

    Args:
        net: the tracker's network.
        fn: ``fn(net, *inputs)``, the calls the tracker makes per frame.
    """

    def __init__(self, net: nn.Module, fn: Callable[..., Any]):
        super().__init__()
        self.net = net
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(self.net, *inputs)


@dataclass
class ProfileStep:
    """The per-frame network call of a tracker.

    Attributes:
        description: what one call computes (printed by the profiler).
        module: ``module(*inputs)`` runs one per-frame step (the network itself or a :class:`StepModule`).
        inputs: positional inputs of one step (random crops of the test-time sizes, batch 1).
        once: ``{label: call}`` of the work done once per sequence or per template/memory update (timed
            separately; not part of the per-frame figure).
    """

    description: str
    module: nn.Module
    inputs: Tuple[Any, ...]
    once: Dict[str, Callable[[], Any]] = field(default_factory=dict)
