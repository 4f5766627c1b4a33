"""The per-frame profiling step of the STARK networks (``tracking/profile_model.py``'s hook,
:mod:`lib.models.profiling`). It lives apart from ``stark_s.py`` and ``stark_st.py`` because it knows both
networks; each network module imports only what it builds on (STARK-ST on STARK-S, never the reverse).
"""

from __future__ import annotations

from typing import Optional

import torch

from lib.utils.misc import NestedTensor

from .stark_s import STARKS
from .stark_st import STARKST

__all__ = ["profiling_step"]


def profiling_step(net: STARKS, cfg, device="cpu", dataset_name: Optional[str] = None):
    """The per-frame step of the STARK trackers, for ``tracking/profile_model.py``.

    Once per sequence (and per template update): the backbone of each template crop
    (``TEST.TEMPLATE_SIZE``), cached. Per frame: the backbone of the search region (``TEST.SEARCH_SIZE``),
    the tokens ``[templates..., search]``, the transformer and the corner head (and the score head for
    STARK-ST, which has ``1 + len(update intervals of dataset_name)`` templates; STARK-S has one).

    Returns:
        :class:`~lib.models.profiling.ProfileStep` whose inputs are the search crop ``(1, 3, S, S)`` and its
        padding mask ``(1, S, S)``.
    """
    from lib.models.profiling import ProfileStep, StepModule
    from lib.utils.merge import merge_template_search

    device = torch.device(device)
    st = isinstance(net, STARKST)
    if st:
        from lib.config.stark_st import update_intervals_for

        n_templates = 1 + len(update_intervals_for(cfg, dataset_name))
    else:
        n_templates = 1
    zs, xs = int(cfg.TEST.TEMPLATE_SIZE), int(cfg.TEST.SEARCH_SIZE)
    template = NestedTensor(torch.randn(1, 3, zs, zs, device=device), torch.zeros(1, zs, zs, dtype=torch.bool,
                                                                                   device=device))
    with torch.no_grad():
        z_dicts = [net.forward_backbone(template) for _ in range(n_templates)]
    heads = {"run_box_head": True, "run_cls_head": True} if st else {"run_box_head": True}

    def step(model, search_img, search_mask):
        x_dict = model.forward_backbone(NestedTensor(search_img, search_mask))
        return model.forward_transformer(seq_dict=merge_template_search(z_dicts + [x_dict]), **heads)

    inputs = (torch.randn(1, 3, xs, xs, device=device), torch.zeros(1, xs, xs, dtype=torch.bool, device=device))
    what = "corner head and score head" if st else "corner head"
    return ProfileStep(f"search backbone ({xs}x{xs}) + transformer over {n_templates} cached template(s) + {what}",
                       StepModule(net, step), inputs,
                       once={f"template backbone ({zs}x{zs}, per template update)": lambda: net.forward_backbone(template)})
