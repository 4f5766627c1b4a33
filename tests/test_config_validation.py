"""Config values are checked by type (the default's) and range (lib/config/core.RANGE_RULES), naming key and file."""

import pytest

from lib.config import ConfigError, ConfigNotFoundError, load_config
from lib.config.core import Config, check_ranges, merge_strict


def _yaml(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, key, expected", [
    ("DATA:\n  SEARCH:\n    SIZE: big\n", "DATA.SEARCH.SIZE", "must be an integer"),
    ("TEST:\n  SEARCH_FACTOR: '4.0'\n", "TEST.SEARCH_FACTOR", "must be a number"),
    ("TEST:\n  EPOCH: [2]\n", "TEST.EPOCH", "must be an integer"),
    ("TRAIN:\n  GRAD_CLIP_NORM: yes\n", "TRAIN.GRAD_CLIP_NORM", "must be a number"),
    ("DATA:\n  MEAN: 0.5\n", "DATA.MEAN", "must be a list"),
    ("TEST:\n  SEARCH_SIZE: 0\n", "TEST.SEARCH_SIZE", "must be a positive number, got 0"),
    ("DATA:\n  TEMPLATE:\n    FACTOR: -2.0\n", "DATA.TEMPLATE.FACTOR", "must be a positive number"),
    ("TRAIN:\n  BATCH_SIZE: 0\n", "TRAIN.BATCH_SIZE", "must be a positive number"),
    ("TRAIN:\n  NUM_WORKER: -1\n", "TRAIN.NUM_WORKER", "non-negative"),
    ("TEST:\n  EPOCH: -3\n", "TEST.EPOCH", "non-negative"),
])
@pytest.mark.parametrize("script", ["ostrack", "stark_s"])
def test_bad_values_name_the_key_and_the_file(tmp_path, script, text, key, expected):
    path = _yaml(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(script, path)
    message = str(exc.value)
    assert path in message and f"'{key}'" in message and expected in message


def test_int_is_accepted_as_float_and_converted(tmp_path):
    cfg = load_config("ostrack", _yaml(tmp_path, "TEST:\n  SEARCH_FACTOR: 4\n  SEARCH_SIZE: 256\n"))
    assert cfg.TEST.SEARCH_FACTOR == 4.0 and isinstance(cfg.TEST.SEARCH_FACTOR, float)
    assert cfg.TEST.SEARCH_SIZE == 256 and isinstance(cfg.TEST.SEARCH_SIZE, int)
    with pytest.raises(ConfigError, match="'TRAIN.AMP' must be a boolean"):
        load_config("ostrack", _yaml(tmp_path, "TRAIN:\n  AMP: 1\n"))


def test_none_default_accepts_anything_and_rules_are_shared():
    base = Config({"A": None, "B": {"SIZE": 3}})
    merge_strict(base, {"A": [1, 2], "B": {"SIZE": 5}}, source="x.yaml")
    assert base.A == [1, 2]
    check_ranges(Config({"GRM": {"SIZE": 1}}), "y.yaml")
    with pytest.raises(ConfigError, match=r"z.yaml: 'ANY.TEMPLATE_SIZE' must be a positive number, got -1"):
        check_ranges(Config({"ANY": {"TEMPLATE_SIZE": -1}}), "z.yaml")


def test_unknown_script_and_missing_config():
    with pytest.raises(ConfigError, match="unknown script 'ostrak'; known scripts: .*ostrack"):
        load_config("ostrak", "baseline")
    with pytest.raises(ConfigNotFoundError, match="shipped configs: tiny_cpu") as exc:
        load_config("ostrack", "nope")
    assert isinstance(exc.value, FileNotFoundError)
