"""Running statistics of the training loop (pytracking ``ltr/admin/stats.py``), storable as plain data."""

from __future__ import annotations

from typing import Any, Dict

__all__ = ["StatValue", "AverageMeter", "stats_state_dict", "load_stats_state_dict"]


class StatValue:
    """The latest value of a statistic and its history (e.g. the learning rate)."""

    def __init__(self):
        self.clear()

    def reset(self) -> None:
        self.val = 0

    def clear(self) -> None:
        self.reset()
        self.history = []

    def update(self, val) -> None:
        self.val = val
        self.history.append(self.val)

    def state_dict(self) -> Dict[str, Any]:
        return {"type": "StatValue", "val": self.val, "history": list(self.history)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.val, self.history = state["val"], list(state["history"])


class AverageMeter:
    """Running average over an epoch; :meth:`new_epoch` moves the average into :attr:`history`."""

    def __init__(self):
        self.clear()
        self.has_new_data = False

    def reset(self) -> None:
        self.avg = 0
        self.val = 0
        self.sum = 0
        self.count = 0

    def clear(self) -> None:
        self.reset()
        self.history = []

    def update(self, val, n: int = 1) -> None:
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count

    def new_epoch(self) -> None:
        if self.count > 0:
            self.history.append(self.avg)
            self.reset()
            self.has_new_data = True
        else:
            self.has_new_data = False

    def state_dict(self) -> Dict[str, Any]:
        return {"type": "AverageMeter", "avg": self.avg, "val": self.val, "sum": self.sum, "count": self.count,
                "history": list(self.history), "has_new_data": self.has_new_data}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        for k in ("avg", "val", "sum", "count", "has_new_data"):
            setattr(self, k, state[k])
        self.history = list(state["history"])


def stats_state_dict(stats: Dict[str, Any]) -> Dict[str, Any]:
    """``{loader: {name: meter}}`` -> plain nested dicts."""
    return {loader: None if meters is None else {name: m.state_dict() for name, m in meters.items()}
            for loader, meters in stats.items()}


def load_stats_state_dict(state: Dict[str, Any]) -> Dict[str, Any]:
    """Inverse of :func:`stats_state_dict`."""
    out = {}
    for loader, meters in state.items():
        if meters is None:
            out[loader] = None
            continue
        out[loader] = {}
        for name, s in meters.items():
            m = AverageMeter() if s.get("type") == "AverageMeter" else StatValue()
            m.load_state_dict(s)
            out[loader][name] = m
    return out
