"""``TensorDict`` and ``TensorList``: a dict / list of tensors that forwards tensor methods to every element
(pytracking ``pytracking/libs/tensordict.py`` and ``tensorlist.py``, OSTrack ``lib/utils/tensor.py``).

``batch.to(device)`` moves every tensor of a training batch; non-tensor entries (strings, numbers,
lists of them) are passed through unchanged.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch

__all__ = ["TensorDict", "TensorList"]


class TensorDict(OrderedDict):
    """Ordered dict of tensors; ``d.to(device)``, ``d.float()``, ... apply the tensor method to every value
    that has it and keep the other values."""

    def concat(self, other) -> "TensorDict":
        """A new TensorDict with the entries of both (no data copied)."""
        return TensorDict(self, **other)

    def copy(self) -> "TensorDict":
        return TensorDict(super().copy())

    def __deepcopy__(self, memodict={}):  # noqa: B006 - copy protocol signature
        return TensorDict(copy.deepcopy(list(self.items()), memodict))

    def __getattr__(self, name):
        if not hasattr(torch.Tensor, name):
            raise AttributeError(f"'TensorDict' object has no attribute '{name}'")

        def apply_attr(*args, **kwargs):
            return TensorDict({n: getattr(e, name)(*args, **kwargs) if hasattr(e, name) else e
                               for n, e in self.items()})

        return apply_attr

    def attribute(self, attr: str, *args) -> "TensorDict":
        return TensorDict({n: getattr(e, attr, *args) for n, e in self.items()})

    def apply(self, fn, *args, **kwargs) -> "TensorDict":
        """A new TensorDict with ``fn(value)`` for every value."""
        return TensorDict({n: fn(e, *args, **kwargs) for n, e in self.items()})

    @staticmethod
    def _iterable(a) -> bool:
        return isinstance(a, (TensorDict, list))


class TensorList(list):
    """List of tensors; tensor methods are applied element-wise (``tl.to(device)``)."""

    def __init__(self, list_of_tensors=None):
        super().__init__(list_of_tensors if list_of_tensors is not None else [])

    def __deepcopy__(self, memodict={}):  # noqa: B006
        return TensorList(copy.deepcopy(list(self), memodict))

    def __getitem__(self, item):
        if isinstance(item, int):
            return super().__getitem__(item)
        if isinstance(item, (tuple, list)):
            return TensorList([super(TensorList, self).__getitem__(i) for i in item])
        return TensorList(super().__getitem__(item))

    def __getattr__(self, name):
        if not hasattr(torch.Tensor, name):
            raise AttributeError(f"'TensorList' object has no attribute '{name}'")

        def apply_attr(*args, **kwargs):
            return TensorList([getattr(e, name)(*args, **kwargs) for e in self])

        return apply_attr

    def apply(self, fn) -> "TensorList":
        return TensorList([fn(e) for e in self])
