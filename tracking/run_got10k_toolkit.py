"""Run one of our trackers through the GOT-10k toolkit (``got10k`` on PyPI) on a local dataset and print its report.

    python tracking/run_got10k_toolkit.py <tracker> <config> --experiment otb|got10k|lasot|uav123|nfs|tcolor128|dtb70
        --root DIR [--checkpoint PATH | --random_weights] [--device DEV] [--precision fp32|fp16|bf16]
        [--dataset NAME] [--version 2015] [--subset val] [--sequences A B ...] [--name NAME]
        [--result_dir results] [--report_dir reports] [--no_report]

The tracker is wrapped by :class:`lib.test.toolkits.got10k_adapter.Got10kTracker`; the toolkit reads the dataset,
runs the tracker (``experiment.run``), writes its own result files (comma-separated, as its reports read them)
under ``<result_dir>/<benchmark>/<name>/`` and its report (``performance.json`` and plots) under
``<report_dir>/<benchmark>/<name>/``. Finished sequences are skipped by the toolkit, so a rerun resumes.

``--dataset`` selects the per-benchmark settings of the tracker (see ``lib/api.py``); by default the benchmark of
the experiment (otb, got10k_val / got10k_test, lasot, uav, nfs, tc128; none for DTB70).

Toolkit behaviour to know (got10k 0.1.3): ``ExperimentOTB`` downloads every sequence folder (98 folders for the
100 sequences of OTB-2015) that is missing under ``--root``, so the script refuses a partial root up front (on a machine without
internet the download would fail); ``--sequences`` restricts a run and its report to some sequences of a complete
root (e.g. a root whose other folders hold only annotations). ``ExperimentLaSOT`` is not in got10k 0.1.3.
"""

import argparse
import os
import sys

import _init_paths  # noqa: F401

from lib.utils.errors import UserError, run_cli

#: --experiment -> (toolkit class, default per-benchmark dataset key of our trackers)
EXPERIMENTS = {
    "otb": ("ExperimentOTB", "otb"),
    "got10k": ("ExperimentGOT10k", None),  # got10k_val or got10k_test by --subset
    "lasot": ("ExperimentLaSOT", "lasot"),
    "uav123": ("ExperimentUAV123", "uav"),
    "nfs": ("ExperimentNfS", "nfs"),
    "tcolor128": ("ExperimentTColor128", "tc128"),
    "dtb70": ("ExperimentDTB70", None),
}


def make_experiment(kind: str, root: str, result_dir: str, report_dir: str, version=None, subset=None):
    """The toolkit's experiment ``kind`` on ``root``.

    Raises:
        UserError: an experiment the installed toolkit lacks, a missing root, or (OTB) missing sequence folders.
    """
    from lib.test.toolkits.got10k_adapter import require_got10k

    got10k = require_got10k()
    import got10k.experiments as experiments

    class_name = EXPERIMENTS[kind][0]
    cls = getattr(experiments, class_name, None)
    if cls is None:
        have = sorted(k for k, (c, _) in EXPERIMENTS.items() if hasattr(experiments, c))
        raise UserError(f"the installed GOT-10k toolkit ({getattr(got10k, '__version__', 'got10k')}) has no {class_name}; "
                        f"its experiments: {', '.join(have)}")
    if not os.path.isdir(root):
        raise UserError(f"--root '{root}' is not a folder")
    kwargs = {"result_dir": result_dir, "report_dir": report_dir}
    if kind == "otb":
        version = int(version) if str(version).isdigit() else (version or 2015)
        from got10k.datasets import OTB

        names = getattr(OTB, "_OTB__version_dict", {}).get(version, [])
        missing = [n for n in names if not os.path.isdir(os.path.join(root, n))]
        if missing:
            raise UserError(f"ExperimentOTB needs all {len(names)} sequence folders of OTB {version} under '{root}' "
                            f"(Jogging and Skating2 hold two targets each; the toolkit downloads missing folders); {len(missing)} are missing, e.g. {', '.join(missing[:5])}")
        kwargs["version"] = version
    elif kind == "got10k":
        kwargs["subset"] = subset or "val"
    elif kind == "uav123" and version:
        kwargs["version"] = version
    return cls(root, **kwargs)


def restrict_sequences(experiment, names):
    """Keep only the sequences ``names`` in ``experiment.dataset`` (its ``seq_names`` and the parallel lists).

    Raises:
        UserError: a name the dataset does not hold.
    """
    dataset = experiment.dataset
    unknown = [n for n in names if n not in dataset.seq_names]
    if unknown:
        raise UserError(f"--sequences: {', '.join(unknown)} not in the toolkit's {type(dataset).__name__} list "
                        f"({len(dataset.seq_names)} sequences, e.g. {', '.join(dataset.seq_names[:5])})")
    keep = [dataset.seq_names.index(n) for n in names]
    total = len(dataset.seq_names)
    for attr in ("seq_names", "seq_dirs", "anno_files"):
        values = getattr(dataset, attr, None)
        if isinstance(values, list) and len(values) == total:
            setattr(dataset, attr, [values[i] for i in keep])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tracker_name", help="registered tracker name (ostrack, grm, stark_s, stark_st, aiatrack, sparsett)")
    parser.add_argument("tracker_param", help="config name (experiments/<script>/<name>.yaml) or a YAML path")
    parser.add_argument("--experiment", required=True, choices=sorted(EXPERIMENTS), help="the toolkit's experiment")
    parser.add_argument("--root", required=True, help="dataset root as the toolkit expects it")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (default: the trainer's output path)")
    parser.add_argument("--random_weights", action="store_true", help="untrained network (tests, demonstrations)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--dataset", default=None, help="per-benchmark settings key (default: the experiment's)")
    parser.add_argument("--version", default=None, help="OTB version (2015, 2013, tb50, tb100) or UAV123/UAV20L")
    parser.add_argument("--subset", default="val", choices=("val", "test"), help="GOT-10k subset (default val)")
    parser.add_argument("--sequences", nargs="+", default=None, help="run and report only these sequences")
    parser.add_argument("--name", default=None, help="tracker name in the toolkit's folders (default <tracker>_<config>)")
    parser.add_argument("--result_dir", default="results", help="toolkit result root (default ./results)")
    parser.add_argument("--report_dir", default="reports", help="toolkit report root (default ./reports)")
    parser.add_argument("--no_report", action="store_true", help="run only")
    args = parser.parse_args(argv)

    from lib.test.toolkits.got10k_adapter import Got10kTracker

    experiment = make_experiment(args.experiment, args.root, args.result_dir, args.report_dir, version=args.version,
                                 subset=args.subset)
    if args.sequences:
        restrict_sequences(experiment, args.sequences)
    dataset = args.dataset or EXPERIMENTS[args.experiment][1]
    if args.experiment == "got10k" and args.dataset is None:
        dataset = f"got10k_{args.subset}"
    tracker = Got10kTracker.load(args.tracker_name, args.tracker_param, name=args.name, checkpoint=args.checkpoint,
                                 device=args.device, precision=args.precision, dataset=dataset,
                                 random_weights=args.random_weights)
    experiment.run(tracker)
    if args.no_report:
        return 0
    performance = experiment.report([tracker.name])
    if performance:
        overall = performance[tracker.name]["overall"]
        n = len(experiment.dataset.seq_names)
        print(f"{tracker.name} on {type(experiment).__name__} ({n} sequences): " +
              ", ".join(f"{k} {v:.4f}" for k, v in overall.items() if isinstance(v, float)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="run_got10k_toolkit.py"))
