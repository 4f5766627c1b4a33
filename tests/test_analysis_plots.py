"""Plots as papers draw them: benchmark names (OTB-2015, LaSOT) and "OPE" in the titles, the number of sequences
when a plot covers fewer than the benchmark holds, the legend beside the curves, and one folder per unnamed
analysis run (``tracking/analysis_results.py``)."""

import os
import sys

import numpy as np

from tests.conftest import PROJECT_ROOT, need_shared


def test_titles_name_the_benchmark_as_papers_do():
    from lib.test.analysis.plots import plot_title

    assert plot_title("Success plot", "otb", 100, 100) == "Success plot of OPE on OTB-2015"
    assert plot_title("Precision plot", "lasot", 12, 280) == "Precision plot of OPE on LaSOT (12 of 280 sequences)"
    assert plot_title("Success plot", "uav123", 123, 123) == "Success plot of OPE on UAV123"  # alias
    assert plot_title("Success plot", "got10k_val", 180, 180) == "Success plot of OPE on GOT-10k val"


def test_the_legend_sits_beside_the_axes():
    from lib.test.analysis.plots import _SPECS, plot_figure

    x = np.linspace(0, 1, 21)
    curves = np.stack([100 * (1 - x ** k) for k in (1, 2, 3, 4, 5, 6)])  # six trackers, curves across the axes
    names = [f"tracker_{k}" for k in range(6)]
    fig = plot_figure(x, curves, curves.mean(axis=1), names, _SPECS["success"], "Success plot of OPE on OTB-2015")
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1  # entirely right of the plotting area
    assert legend.x1 <= fig.bbox.x1 + 1  # and inside the figure
    assert [t.get_text().split(" [")[0] for t in ax.get_legend().get_texts()] == names[::-1]  # best first


def test_unnamed_runs_get_their_own_plot_folder(tmp_path, monkeypatch):
    results = need_shared("data", "results", "otb100")
    anno = need_shared("data", "otb100_anno")
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(tmp_path / "results"))
    monkeypatch.setenv("TRACKING_RESULT_PLOT_PATH", str(tmp_path / "plots"))
    sys.path.insert(0, str(PROJECT_ROOT / "tracking"))
    import analysis_results

    args = ["--results_dir", str(results), "--trackers", "ATOM", "--dataset", "otb", "--dataset_path", str(anno),
            "--plot"]
    assert analysis_results.main(args) == 0
    assert analysis_results.main(args) == 0
    runs = sorted(d for d in os.listdir(tmp_path / "plots" / "otb") if d.startswith("run_"))
    assert len(runs) == 2
    for run in runs:
        assert os.path.getsize(tmp_path / "plots" / "otb" / run / "success_plot.png") > 1000
    assert analysis_results.main(args + ["--report_name", "mine"]) == 0
    assert os.path.isfile(tmp_path / "plots" / "mine" / "success_plot.pdf")
    assert not [d for d in os.listdir(tmp_path / "plots" / "mine") if d.startswith("run_")]
