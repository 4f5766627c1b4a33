"""Layering of the house: the one environment module (``lib/utils/local_settings.py``) reads and writes both
local.py files, the historical modules re-export it, models read paths from it without importing training code,
and the STARK network modules do not import each other."""

import ast

import pytest

from tests.conftest import PROJECT_ROOT


def test_historical_modules_are_the_one_module():
    import lib.test.evaluation.environment as test_env
    import lib.train.admin.environment as train_env
    import lib.utils.local_settings as ls

    assert test_env.EnvSettings is ls.EnvSettings and train_env.EnvironmentSettings is ls.EnvironmentSettings
    assert test_env.env_settings is ls.evaluation_env_settings and train_env.env_settings is ls.training_env_settings
    assert test_env.SettingsError is ls.SettingsError is train_env.SettingsError


def test_missing_local_py_and_environment_overrides(tmp_path, monkeypatch):
    import lib.utils.local_settings as ls

    monkeypatch.setattr(ls, "PROJECT_ROOT", tmp_path)  # a project without local.py files
    for name in ("TRACKING_RESULTS_PATH", "TRACKING_RESULT_PLOT_PATH", "TRACKING_WORKSPACE_DIR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ls.SettingsError, match="TRACKING_RESULTS_PATH and TRACKING_RESULT_PLOT_PATH"):
        ls.evaluation_env_settings()
    with pytest.raises(ls.SettingsError, match="lib/train/admin/local.py does not exist.*TRACKING_WORKSPACE_DIR"):
        ls.training_env_settings()
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(tmp_path / "r"))
    monkeypatch.setenv("TRACKING_RESULT_PLOT_PATH", str(tmp_path / "p"))
    env = ls.evaluation_env_settings()
    assert env.results_path == str(tmp_path / "r") and env.prj_dir == str(tmp_path)
    monkeypatch.setenv("TRACKING_PRETRAINED_NETWORKS", str(tmp_path / "weights"))
    assert ls.pretrained_networks_dir() == str(tmp_path / "weights")
    monkeypatch.delenv("TRACKING_PRETRAINED_NETWORKS")
    assert ls.pretrained_networks_dir() == str(tmp_path / "pretrained_models")


def test_an_official_train_local_py_gets_our_helpers(tmp_path, monkeypatch):
    import lib.utils.local_settings as ls

    monkeypatch.setattr(ls, "PROJECT_ROOT", tmp_path)
    admin = tmp_path / "lib" / "train" / "admin"
    admin.mkdir(parents=True)
    source = ("class EnvironmentSettings:  # the official layout: its own class, no helpers\n"
              "    def __init__(self):\n        self.workspace_dir = '/ws'\n        self.lasot_dir = '/nowhere/lasot'\n")
    (admin / "local.py").write_text(source)  # the file load() looks for
    (admin / "official_local_for_test.py").write_text(source)  # the module it imports (a name no other test uses)
    monkeypatch.setattr(ls.EnvironmentSettings, "MODULE", "official_local_for_test")
    monkeypatch.syspath_prepend(str(admin))
    env = ls.training_env_settings()
    assert isinstance(env, ls.EnvironmentSettings) and env.workspace_dir == "/ws"
    with pytest.raises(ls.SettingsError, match="'lasot_dir'.*'/nowhere/lasot', which does not exist"):
        env.require("lasot_dir")


def test_models_never_import_training_code():
    offenders = []
    for path in sorted((PROJECT_ROOT / "lib" / "models").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(PROJECT_ROOT)}: {n}" for n in names if n.startswith("lib.train")]
    assert offenders == []


def test_stark_s_does_not_import_stark_st():
    """STARK-ST builds on STARK-S, never the reverse (the profiling step that knows both lives apart)."""
    source = (PROJECT_ROOT / "lib" / "models" / "stark" / "stark_s.py").read_text()
    imported = [n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m and m.endswith("stark_st")]
    import lib.models.stark as stark

    assert stark.profiling_step.__module__ == "lib.models.stark.profiling"
