"""Convert the official sequence metadata (extracted from the official dataset classes into
``../shared/reference/lists/*.json``) into the compact package files read at run time:

    python lib/test/evaluation/lists/convert_reference_lists.py --reference ../shared/reference/lists

Writes ``<dataset>.json`` next to this script for OTB-2015, LaSOT, LaSOT-ext (``convert_otb_lasot_lists.py``),
UAV123, NfS, TC128, AVisT and VOT. Each info list is
stored as ``{"source", "columns", "rows"}`` (one row per sequence, columns as in the official
``sequence_info_list`` dicts), the name lists as ``{"source", "names"}``. The converted files are
committed: they are the toolkit's metadata, like the lists hard-coded in the official classes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "..", "..")))
from lib.utils.errors import UserError, add_verbose_argument, run_cli  # noqa: E402
from lib.utils.misc import atomic_write  # noqa: E402

INFO_COLUMNS = ["name", "path", "startFrame", "endFrame", "nz", "ext", "anno_path", "object_class", "initOmit",
                "occlusion"]

#: Strings the extraction of OSTrack's votdataset.py picked up after the VOT2022 list (they come from
#: the ``parse`` helper below the list, not from the list itself). OSTrack's VOT2022 list has 62 names.
VOT_EXTRACTION_ARTIFACTS = {"m", ",", "Unknown region format."}
VOT_EXPECTED = {"vot18": 60, "vot20": 60, "vot22": 62}


def _load(reference: str, name: str):
    with open(os.path.join(reference, name)) as f:
        return json.load(f)


def _info_table(entries: List[Dict[str, Any]], source: str) -> Dict[str, Any]:
    unknown = {k for e in entries for k in e} - set(INFO_COLUMNS)
    if unknown:
        raise ValueError(f"{source}: unexpected info fields {sorted(unknown)}")
    columns = [c for c in INFO_COLUMNS if any(c in e for e in entries)]
    rows = [[e.get(c) for c in columns] for e in entries]
    return {"source": source, "columns": columns, "rows": rows}


def _write(name: str, data: Dict[str, Any], out_dir: str) -> str:
    """One JSON object with one line per row / name (diff-friendly, compact)."""
    path = os.path.join(out_dir, f"{name}.json")
    key = "rows" if "rows" in data else "names"
    head = {k: v for k, v in data.items() if k not in ("rows", "names", "by_year")}
    parts = [json.dumps(k) + ": " + json.dumps(v) for k, v in head.items()]
    if "by_year" in data:
        years = []
        for year, names in data["by_year"].items():
            years.append("  " + json.dumps(year) + ": [\n" + ",\n".join("    " + json.dumps(n) for n in names) + "\n  ]")
        parts.append('"by_year": {\n' + ",\n".join(years) + "\n}")
    else:
        parts.append(json.dumps(key) + ": [\n" + ",\n".join("  " + json.dumps(r) for r in data[key]) + "\n]")
    with atomic_write(path) as f:
        f.write("{\n" + ",\n".join(parts) + "\n}\n")
    return path


def convert(reference: str, out_dir: str = HERE) -> List[str]:
    """Write the package lists from the reference folder; returns the written paths."""
    written = []
    uav = _load(reference, "pytracking__uav_info.json")
    if uav != _load(reference, "ostrack__uav_info.json"):
        raise ValueError("pytracking and OSTrack UAV123 lists differ")
    written.append(_write("uav", _info_table(uav, "UAV123 sequence_info_list of pytracking/OSTrack uavdataset.py"), out_dir))

    nfs = _load(reference, "pytracking__nfs_info.json")
    written.append(_write("nfs", _info_table(nfs, "NfS (30 fps) sequence_info_list of pytracking/OSTrack nfsdataset.py"), out_dir))

    tpl = _load(reference, "pytracking__tpl_info.json")
    table = _info_table(tpl["all"], "Temple Color 128 sequence_info_list of pytracking tpldataset.py")
    table["exclude_otb_keeps"] = tpl["exclude_otb_names"]
    written.append(_write("tc128", table, out_dir))

    avist = _load(reference, "pytracking__avist_names.json")
    written.append(_write("avist", {"source": "AVisT sequence list of pytracking avistdataset.py", "names": avist}, out_dir))

    vot = _load(reference, "ostrack__vot_names_by_year.json")
    by_year = {}
    for year, names in vot.items():
        kept = [n for n in names if n not in VOT_EXTRACTION_ARTIFACTS]
        if len(kept) != VOT_EXPECTED[year]:
            raise ValueError(f"{year}: expected {VOT_EXPECTED[year]} names, got {len(kept)}")
        by_year[year] = kept
    if by_year["vot18"] != _load(reference, "pytracking__vot2018_names.json"):
        raise ValueError("pytracking and OSTrack VOT2018 lists differ")
    written.append(_write("vot", {"source": "VOT sequence lists of OSTrack votdataset.py (years 18, 20, 22)",
                                  "by_year": by_year}, out_dir))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default=os.path.join(HERE, "..", "..", "..", "..", "..", "shared", "reference", "lists"),
                        help="folder with the extracted official lists (default ../shared/reference/lists)")
    parser.add_argument("--out_dir", default=HERE)
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    from lib.test.evaluation.lists.convert_otb_lasot_lists import convert as convert_otb_lasot

    reference = os.path.abspath(args.reference)
    if not os.path.isdir(reference):
        raise UserError(f"--reference '{reference}' is not a folder (the lists extracted from the official code)")
    for path in convert_otb_lasot(reference, args.out_dir) + convert(reference, args.out_dir):
        print("wrote", path)


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="convert_reference_lists.py"))
