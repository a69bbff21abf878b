"""Config schemas: defaults, the quick variant, overrides from text and files, errors that name the key."""

import json
from dataclasses import dataclass
from typing import Literal

import pytest

from experiments import config as cfg
from experiments.config import ConfigError, param


@dataclass(frozen=True)
class C:
    lr: float = param(0.01, min=0.0, max=1.0, help="learning rate")
    steps: int = param(100, min=1)
    rule: Literal["oja", "bcm"] = "oja"
    fast: bool = False
    name: str = "x"
    layers: tuple[int, ...] = (4, 4)

    def __post_init__(self):
        if self.rule == "bcm" and self.fast:
            raise ValueError("fast: not available with rule='bcm'")

    @classmethod
    def quick(cls):
        return cls(steps=10)


def test_defaults_quick_and_overrides_from_text():
    assert cfg.resolve(C, False, {}) == C()
    assert cfg.resolve(C, True, {}).steps == 10
    got = cfg.resolve(C, True, {"lr": "1e-3", "rule": "bcm", "fast": "false", "name": "7", "layers": "8,16"})
    assert got == C(lr=1e-3, steps=10, rule="bcm", fast=False, name="7", layers=(8, 16))
    assert cfg.resolve(C, False, {"lr": 1, "layers": [2]}).lr == 1.0  # JSON/TOML values: an int is a float
    assert cfg.as_dict(C()) == {"lr": 0.01, "steps": 100, "rule": "oja", "fast": False, "name": "x", "layers": [4, 4]}


@pytest.mark.parametrize("values, message", [
    ({"lrr": "1"}, "unknown parameter 'lrr'; known: lr, steps"),
    ({"lr": "fast"}, "lr: expected a number, got 'fast'"),
    ({"lr": "2"}, "lr: must be <= 1.0, got 2.0"),
    ({"steps": "0"}, "steps: must be >= 1, got 0"),
    ({"steps": "1.5"}, "steps: expected an int, got '1.5'"),
    ({"steps": True}, "steps: expected an int, got True"),
    ({"rule": "hebb"}, "rule: expected one of 'oja', 'bcm', got 'hebb'"),
    ({"fast": "maybe"}, "fast: expected true or false, got 'maybe'"),
    ({"name": 3}, "name: expected text, got 3"),
    ({"layers": "4,x"}, "layers: expected an int, got 'x'"),
    ({"rule": "bcm", "fast": "true"}, "fast: not available with rule='bcm'"),
])
def test_errors_name_the_key(values, message):
    with pytest.raises(ConfigError) as info:
        cfg.resolve(C, False, values)
    assert message in str(info.value) and "\n" not in str(info.value)


@dataclass(frozen=True)
class Nested:
    shapes: tuple[tuple[int, ...], ...] = ((4, 1), (8, 2))


def test_tuples_from_json_list_text_also_nested():
    assert cfg.resolve(C, False, {"layers": "[8, 16]"}).layers == (8, 16)
    got = cfg.resolve(Nested, False, {"shapes": "[[16, 1], [32, 2]]"})
    assert got.shapes == ((16, 1), (32, 2)) and cfg.as_dict(got) == {"shapes": [[16, 1], [32, 2]]}
    assert cfg.resolve(Nested, False, {"shapes": [[3, 1]]}).shapes == ((3, 1),)
    with pytest.raises(ConfigError, match="shapes: expected a JSON list"):
        cfg.resolve(Nested, False, {"shapes": "[[16, 1]"})
    with pytest.raises(ConfigError, match="shapes: expected an int"):
        cfg.resolve(Nested, False, {"shapes": "[[16, 1.5]]"})


def test_schema_less_values_are_read_as_json_where_they_parse():
    assert cfg.resolve(None, False, {"a": "3", "b": "1e-3", "c": "true", "d": "oja", "e": "[1, 2]"}) == \
        {"a": 3, "b": 0.001, "c": True, "d": "oja", "e": [1, 2]}


def test_schema_fields_describe_the_parameters():
    fields = {f.name: f for f in cfg.schema_fields(C)}
    assert fields["steps"].default == 100 and fields["steps"].quick == 10 and fields["steps"].min == 1
    assert fields["lr"].help == "learning rate" and fields["layers"].type_name() == "tuple[int, ...]"
    assert fields["rule"].type_name() == "'oja' | 'bcm'"


def test_a_config_schema_must_be_a_dataclass_with_defaults():
    @dataclass
    class NoDefault:
        x: int

    with pytest.raises(TypeError, match="NoDefault.x needs a default"):
        cfg.schema_fields(NoDefault)
    with pytest.raises(TypeError, match="must be a dataclass type"):
        cfg.schema_fields(dict)


def test_seeds_sweeps_and_the_grid():
    assert cfg.parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert cfg.parse_seeds("5") == [5] and cfg.parse_seeds("2,2,1") == [2, 1]
    for bad in ("3-1", "-1", "a", "1-", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            cfg.parse_seeds(bad)
    assert cfg.parse_sweep("lr=1e-3, 1e-2") == ("lr", ["1e-3", "1e-2"])
    for bad, msg in (("lr", "expected key=value"), ("lr=1,,2", "empty value"), ("lr=1,1", "repeated value")):
        with pytest.raises(ConfigError, match=msg):
            cfg.parse_sweep(bad)
    grid = cfg.expand_grid({"a": [1, 2], "b": ["x", "y"]}, [0, 1])
    assert len(grid) == 8 and grid[0] == ({"a": 1, "b": "x"}, 0) and grid[1] == ({"a": 1, "b": "x"}, 1)
    assert grid[-1] == ({"a": 2, "b": "y"}, 1)


def test_config_files(tmp_path):
    (tmp_path / "c.toml").write_text('lr = 0.5\nrule = "bcm"\nlayers = [1, 2]\n')
    assert cfg.resolve(C, False, cfg.load_file(tmp_path / "c.toml")) == C(lr=0.5, rule="bcm", layers=(1, 2))
    (tmp_path / "c.json").write_text(json.dumps({"steps": "many"}))
    with pytest.raises(ConfigError, match="steps: expected an int"):
        cfg.resolve(C, False, cfg.load_file(tmp_path / "c.json"))
    (tmp_path / "bad.toml").write_text("lr = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        cfg.load_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="no such file"):
        cfg.load_file(tmp_path / "missing.toml")
    (tmp_path / "c.yaml").write_text("lr: 1")
    with pytest.raises(ConfigError, match="expected a .toml or .json file"):
        cfg.load_file(tmp_path / "c.yaml")
