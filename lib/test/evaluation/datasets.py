"""Benchmark registry: ``get_dataset(*names)`` returns the concatenated :class:`SequenceList`.

Each entry names the module, class and keyword arguments of a dataset class; modules are imported on
first use. Every dataset class takes ``base_path=None`` (default: its field in
``lib/test/evaluation/local.py``), so ``--dataset_path`` can point one run elsewhere.
"""

from __future__ import annotations

import importlib
from collections import namedtuple
from typing import Optional

from lib.utils.errors import register_user_error

from .data import BaseDataset, SequenceList

__all__ = ["DatasetInfo", "DATASETS", "ALIASES", "DISPLAY_NAMES", "UnknownDatasetError", "canonical_name",
           "display_name", "load_dataset", "get_dataset", "list_datasets"]

DatasetInfo = namedtuple("DatasetInfo", ["module", "class_name", "kwargs"])

_P = "lib.test.evaluation."
DATASETS = {
    "otb": DatasetInfo(_P + "otbdataset", "OTBDataset", {}),
    "lasot": DatasetInfo(_P + "lasotdataset", "LaSOTDataset", {}),
    "lasot_extension_subset": DatasetInfo(_P + "lasotdataset", "LaSOTExtensionSubsetDataset", {}),
    "got10k_test": DatasetInfo(_P + "got10kdataset", "GOT10KDataset", {"split": "test"}),
    "got10k_val": DatasetInfo(_P + "got10kdataset", "GOT10KDataset", {"split": "val"}),
    "got10k_ltrval": DatasetInfo(_P + "got10kdataset", "GOT10KDataset", {"split": "ltrval"}),
    "trackingnet": DatasetInfo(_P + "trackingnetdataset", "TrackingNetDataset", {}),
    "uav": DatasetInfo(_P + "uavdataset", "UAVDataset", {}),
    "uav10fps": DatasetInfo(_P + "uavdataset", "UAV10fpsDataset", {}),
    "nfs": DatasetInfo(_P + "nfsdataset", "NFSDataset", {}),
    "tc128": DatasetInfo(_P + "tc128dataset", "TC128Dataset", {}),
    "tc128ce": DatasetInfo(_P + "tc128dataset", "TC128Dataset", {"ce_only": True}),
    "tpl_nootb": DatasetInfo(_P + "tc128dataset", "TC128Dataset", {"exclude_otb": True}),
    "avist": DatasetInfo(_P + "avistdataset", "AVisTDataset", {}),
    "vot18": DatasetInfo(_P + "votdataset", "VOTDataset", {"year": 18}),
    "vot20": DatasetInfo(_P + "votdataset", "VOTDataset", {"year": 20}),
    "vot22": DatasetInfo(_P + "votdataset", "VOTDataset", {"year": 22}),
}
ALIASES = {"lasot_ext": "lasot_extension_subset", "otb2015": "otb", "otb100": "otb", "uav123": "uav",
           "uav123_10fps": "uav10fps", "vot": "vot18", "vot2018": "vot18", "vot2020": "vot20", "vot2022": "vot22",
           "got10k": "got10k_test", "tn": "trackingnet", "tpl": "tc128"}


#: benchmark names as papers write them (plot titles, reports)
DISPLAY_NAMES = {
    "otb": "OTB-2015", "lasot": "LaSOT", "lasot_extension_subset": "LaSOT_ext", "got10k_test": "GOT-10k test",
    "got10k_val": "GOT-10k val", "got10k_ltrval": "GOT-10k ltrval", "trackingnet": "TrackingNet", "uav": "UAV123",
    "uav10fps": "UAV123@10fps", "nfs": "NfS", "tc128": "TC128", "tc128ce": "TC128-CE", "tpl_nootb": "TC128 (w/o OTB)",
    "avist": "AVisT", "vot18": "VOT2018", "vot20": "VOT2020", "vot22": "VOT2022",
}


def display_name(name: str) -> str:
    """The benchmark ``name`` (registry key or alias) as papers write it (``otb`` -> ``OTB-2015``); an unknown
    name is returned unchanged."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    return DISPLAY_NAMES.get(key, str(name))


@register_user_error
class UnknownDatasetError(KeyError):
    """A dataset name that is not registered (the message lists the registered names)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def canonical_name(name: str) -> str:
    """The registry key of ``name`` (aliases resolved, lower case).

    Raises:
        UnknownDatasetError: unknown name.
    """
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset '{name}'; registered datasets: {', '.join(list_datasets())} "
                                  f"(aliases: {', '.join(sorted(ALIASES))})")
    return key


def list_datasets():
    """Registered dataset names."""
    return sorted(DATASETS)


def load_dataset(name: str, base_path: Optional[str] = None, missing: str = "error", **kwargs) -> BaseDataset:
    """The dataset object of ``name`` (aliases accepted), reading from ``base_path`` if given.

    ``missing`` (``'error'`` or ``'skip'``) is what the dataset does with sequences of the official list
    that are absent from its folder (see :class:`~lib.test.evaluation.data.BaseDataset`).

    Raises:
        UnknownDatasetError: unknown name (a KeyError; the message lists the registered names).
    """
    info = DATASETS[canonical_name(name)]
    module = importlib.import_module(info.module)
    cls = getattr(module, info.class_name)
    return cls(base_path=base_path, missing=missing, **dict(info.kwargs, **kwargs))


def get_dataset(*names: str, base_path: Optional[str] = None, missing: str = "error") -> SequenceList:
    """Concatenated sequence lists of the datasets ``names`` (``missing`` as in :func:`load_dataset`)."""
    out = SequenceList()
    for name in names:
        out.extend(load_dataset(name, base_path=base_path, missing=missing).get_sequence_list())
    return out
