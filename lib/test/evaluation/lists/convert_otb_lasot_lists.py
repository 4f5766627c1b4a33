"""Convert the official OTB-2015, LaSOT and LaSOT-extension sequence metadata (extracted from the
official dataset classes into ``../shared/reference/lists/*.json``) into the package files read at run time:

    python lib/test/evaluation/lists/convert_reference_lists.py --reference ../shared/reference/lists

(that script converts every benchmark's lists; this module holds the OTB and LaSOT part).

Writes ``otb.json``, ``lasot.json`` and ``lasot_extension_subset.json`` next to this script, in the format
of the other package lists: an info list as ``{"source", "columns", "rows"}`` (one row per sequence, the
columns of the official ``sequence_info_list`` dicts), a name list as ``{"source", "names"}``.

pytracking and OSTrack carry the same 100 OTB entries except ``KiteSurf`` (pytracking: ``KiteSurf/jpg``,
``png``; OSTrack: ``KiteSurf/img``, ``jpg``). The OSTrack entry is the row; the pytracking one is kept
under ``"alternatives"`` and :class:`~lib.test.evaluation.otbdataset.OTBDataset` uses it when only that
folder exists. The converted files are committed: they are toolkit metadata, like the lists hard-coded in
the official classes.
"""

from __future__ import annotations

import os
import sys
from typing import List

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")))
from lib.test.evaluation.lists.convert_reference_lists import HERE, _load, _write  # noqa: E402

OTB_COLUMNS = ["name", "path", "startFrame", "endFrame", "nz", "ext", "anno_path", "object_class", "initOmit"]
EXPECTED = {"otb": 100, "lasot": 280, "lasot_extension_subset": 150}


def convert(reference: str, out_dir: str = HERE) -> List[str]:
    """Write the three package lists from the reference folder; returns the written paths.

    Raises:
        ValueError: the pytracking and OSTrack lists differ other than in the known KiteSurf entry, an
            entry has an unexpected field, or a list has the wrong length.
    """
    pt = _load(reference, "pytracking__otb_info.json")
    os_ = _load(reference, "ostrack__otb_info.json")
    if len(pt) != EXPECTED["otb"] or len(os_) != EXPECTED["otb"]:
        raise ValueError(f"OTB lists must have {EXPECTED['otb']} entries, got {len(pt)} / {len(os_)}")
    alternatives = {}
    for a, b in zip(pt, os_):
        if a != b:
            if a["name"] != "KiteSurf" or b["name"] != "KiteSurf":
                raise ValueError(f"pytracking and OSTrack OTB entries differ: {a} vs {b}")
            alternatives[a["name"]] = {"path": a["path"], "ext": a["ext"]}
    unknown = {k for e in os_ for k in e} - set(OTB_COLUMNS)
    if unknown:
        raise ValueError(f"unexpected OTB info fields {sorted(unknown)}")
    rows = [[e.get(c, 0 if c == "initOmit" else None) for c in OTB_COLUMNS] for e in os_]
    written = [_write("otb", {"source": "OTB-2015 sequence_info_list of OSTrack/pytracking otbdataset.py",
                              "columns": OTB_COLUMNS, "alternatives": alternatives, "rows": rows}, out_dir)]

    for key, fname, what in (("lasot", "lasot_names.json", "LaSOT test (280) sequence list"),
                             ("lasot_extension_subset", "lasotextensionsubset_names.json",
                              "LaSOT extension subset (150) sequence list")):
        names_pt = _load(reference, "pytracking__" + fname)
        names_os = _load(reference, "ostrack__" + fname)
        if names_pt != names_os:
            raise ValueError(f"pytracking and OSTrack {key} lists differ")
        if len(names_pt) != EXPECTED[key] or len(set(names_pt)) != len(names_pt):
            raise ValueError(f"{key}: expected {EXPECTED[key]} distinct names, got {len(names_pt)}")
        written.append(_write(key, {"source": f"{what} of pytracking/OSTrack lasot*dataset.py", "names": names_pt},
                              out_dir))
    return written
