"""Console commands installed by ``pip install -e .`` (``[project.scripts]`` of ``pyproject.toml``).

Each command runs the ``main`` of one entry script under :func:`lib.utils.errors.run_cli`: a user error prints one
message and exits with status 2 (``--verbose`` keeps the traceback), as ``python tracking/<script>.py`` does.

=============================  =====================================
command                        script
=============================  =====================================
``tracking-test``              ``tracking/test.py``
``tracking-train``             ``tracking/train.py``
``tracking-analysis``          ``tracking/analysis_results.py``
``tracking-play``              ``tracking/play_results.py``
``tracking-video-demo``        ``tracking/video_demo.py``
``tracking-create-local``      ``tracking/create_default_local_file.py``
``tracking-convert-checkpoint````tracking/convert_checkpoint.py``
``tracking-make-lmdb``         ``tracking/make_lmdb.py``
``tracking-profile``           ``tracking/profile_model.py``
``tracking-got10k-toolkit``    ``tracking/run_got10k_toolkit.py``
``tracking-vot``               ``tracking/vot_tracker.py`` (the TraX tracker the VOT toolkit starts)
``tracking-vot-workspace``     ``tracking/make_vot_workspace.py``
=============================  =====================================
"""

from __future__ import annotations

import importlib

__all__ = ["COMMANDS", "run_script"]

#: command name -> module of the entry script (the registry ``pyproject.toml``'s ``[project.scripts]`` mirrors).
COMMANDS = {
    "tracking-test": "tracking.test",
    "tracking-train": "tracking.train",
    "tracking-analysis": "tracking.analysis_results",
    "tracking-play": "tracking.play_results",
    "tracking-video-demo": "tracking.video_demo",
    "tracking-create-local": "tracking.create_default_local_file",
    "tracking-convert-checkpoint": "tracking.convert_checkpoint",
    "tracking-make-lmdb": "tracking.make_lmdb",
    "tracking-profile": "tracking.profile_model",
    "tracking-got10k-toolkit": "tracking.run_got10k_toolkit",
    "tracking-vot": "tracking.vot_tracker",
    "tracking-vot-workspace": "tracking.make_vot_workspace",
}


def run_script(module_name: str) -> int:
    """Run ``module_name``'s ``main()`` (it reads ``sys.argv``) under ``run_cli``; returns the exit status.

    A ``main`` that returns something other than an int or None (``video_demo`` returns the boxes) counts as
    success.
    """
    from lib.utils.errors import run_cli

    module = importlib.import_module(module_name)

    def main():
        status = module.main()
        return status if status is None or isinstance(status, int) else 0

    return run_cli(main, prog=module_name.rsplit(".", 1)[-1] + ".py")


def _command(module_name: str):
    def command() -> int:
        return run_script(module_name)

    command.__doc__ = f"Console command running {module_name}.main()."
    return command


# One function per command, named after it (``tracking-video-demo`` -> ``video_demo``): pyproject's targets.
for _name, _module in COMMANDS.items():
    globals()[_name[len("tracking-"):].replace("-", "_")] = _command(_module)
