"""Experiment parameters: a declared schema, overrides, seeds and sweeps.

A study may declare its parameters as a dataclass whose fields have defaults
(and, optionally, a ``quick()`` classmethod returning the small variant)::

    @dataclass(frozen=True)
    class Config:
        samples: int = param(12000, min=1, help="presentations per stream")
        lr: float = param(0.005, min=0.0)
        rule: Literal["oja", "bcm"] = "oja"

        @classmethod
        def quick(cls):
            return cls(samples=3000)

Supported field types: ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``
and ``tuple[T, ...]`` of those (also nested: ``tuple[tuple[int, ...], ...]``; on the
command line a tuple is ``a,b,c`` or a JSON list such as ``[[4, 1], [8, 1]]``). Values from ``--set key=value``, from a
TOML/JSON file or from a sweep are checked against the type and the range
(:func:`param`'s ``min``/``max``/``choices``), then the dataclass is built
(so its ``__post_init__`` checks apply too). Every mistake is a
:class:`ConfigError` naming the key.

A study without a schema takes any ``key=value`` into ``ctx.params``
(values read as JSON where they parse, e.g. ``3``, ``1e-3``, ``true``, and
as text otherwise).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "param", "ParamSpec", "schema_fields", "coerce_values", "resolve", "as_dict",
           "parse_assignment", "parse_seeds", "parse_sweep", "load_file", "expand_grid"]


class ConfigError(ValueError):
    """A user mistake in a study's parameters, seeds, sweep or run options (one line, names the key)."""


def param(default: Any, *, min: float | None = None, max: float | None = None, choices: tuple | None = None,
          help: str = "") -> Any:
    """A config field with a default, an inclusive range ``[min, max]`` or allowed ``choices``, and a help line."""
    return dataclasses.field(default=default, metadata={"min": min, "max": max, "choices": choices, "help": help})


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: what ``neuro show`` prints and what values are checked against."""

    name: str
    type: Any
    default: Any
    quick: Any
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    help: str = ""

    def type_name(self) -> str:
        return _type_name(self.type)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"tuple[{_type_name(typing.get_args(tp)[0])}, ...]"
    return getattr(tp, "__name__", str(tp))


def _check_schema(schema) -> None:
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
        raise TypeError(f"config must be a dataclass type, got {schema!r}")
    for f in dataclasses.fields(schema):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TypeError(f"config field {schema.__name__}.{f.name} needs a default")


def _defaults(schema, quick: bool):
    if quick and hasattr(schema, "quick"):
        value = schema.quick()
        if not isinstance(value, schema):
            raise TypeError(f"{schema.__name__}.quick() must return a {schema.__name__}, got {type(value).__name__}")
        return value
    return schema()


def schema_fields(schema) -> list[ParamSpec]:
    """The declared parameters of ``schema`` with their defaults, quick values and ranges."""
    _check_schema(schema)
    hints = typing.get_type_hints(schema, include_extras=False)
    full, quick = _defaults(schema, False), _defaults(schema, True)
    return [
        ParamSpec(f.name, hints[f.name], getattr(full, f.name), getattr(quick, f.name), f.metadata.get("min"),
                  f.metadata.get("max"), f.metadata.get("choices"), f.metadata.get("help", ""))
        for f in dataclasses.fields(schema)
    ]


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _coerce(key: str, value: Any, tp) -> Any:
    """``value`` (text from the command line, or a JSON/TOML value) as type ``tp``; ConfigError otherwise."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        for a in allowed:
            try:
                candidate = _coerce(key, value, type(a))
            except ConfigError:
                continue
            if candidate == a:
                return a
        raise ConfigError(f"{key}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        if isinstance(value, str) and value.strip().startswith("["):  # a JSON list, e.g. [[4, 1], [8, 1]]
            try:
                value = json.loads(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a JSON list, got {value!r}") from None
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()] if value.strip() else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(key, v, item) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an int, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected text, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def _check_range(spec: ParamSpec, value: Any) -> None:
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if spec.choices is not None and v not in spec.choices:
            raise ConfigError(f"{spec.name}: expected one of {', '.join(map(repr, spec.choices))}, got {v!r}")
        if spec.min is not None and v < spec.min:
            raise ConfigError(f"{spec.name}: must be >= {spec.min}, got {v!r}")
        if spec.max is not None and v > spec.max:
            raise ConfigError(f"{spec.name}: must be <= {spec.max}, got {v!r}")


def _loose(value: Any) -> Any:
    """A schema-less value: text read as JSON where it parses (numbers, true/false, lists), else kept as text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def coerce_values(schema, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` checked and converted against ``schema`` (None: any keys, read loosely)."""
    if schema is None:
        return {k: _loose(v) for k, v in values.items()}
    specs = {s.name: s for s in schema_fields(schema)}
    out = {}
    for key, value in values.items():
        if key not in specs:
            raise ConfigError(f"unknown parameter {key!r}; known: {', '.join(specs) or '(none)'}")
        out[key] = _coerce(key, value, specs[key].type)
        _check_range(specs[key], out[key])
    return out


def resolve(schema, quick: bool, values: dict[str, Any]):
    """The config instance (``schema``'s defaults or ``quick()``, with ``values`` applied), or for a
    schema-less study the dict of ``values``."""
    values = coerce_values(schema, values)
    if schema is None:
        return values
    try:
        return dataclasses.replace(_defaults(schema, quick), **values)
    except (ValueError, TypeError) as exc:  # the schema's own __post_init__ checks
        raise ConfigError(str(exc)) from exc


def _listed(value: Any) -> Any:
    return [_listed(v) for v in value] if isinstance(value, tuple) else value


def as_dict(config) -> dict:
    """A resolved config as a plain dict (tuples, also nested ones, as lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: _listed(getattr(config, f.name)) for f in dataclasses.fields(config)}
    return dict(config)


def parse_assignment(text: str, option: str = "--set") -> tuple[str, str]:
    """``"key=value"`` as ``(key, value)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{option}: expected key=value, got {text!r}")
    return key.strip(), value.strip()


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """``"key=v1,v2,..."`` as ``(key, [v1, v2, ...])`` (at least one value, no repeats)."""
    key, value = parse_assignment(text, "--sweep")
    values = [v.strip() for v in value.split(",")]
    if not all(values):
        raise ConfigError(f"--sweep {key}: empty value in {value!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"--sweep {key}: repeated value in {value!r}")
    return key, values


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,5"`` or ``"0-3,7"`` as a list of non-negative seeds (ranges inclusive, repeats dropped)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ConfigError(f"--seeds: expected a list like 0-9 or 0,3,5 of non-negative ints, got {text!r}") from None
        if a < 0 or b < a:
            raise ConfigError(f"--seeds: bad range {part.strip()!r} (non-negative, low-high)")
        seeds += [s for s in range(a, b + 1) if s not in seeds]
    return seeds


def load_file(path: str | Path) -> dict[str, Any]:
    """Parameter values from a ``.toml`` or ``.json`` file (one flat table of key = value)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: no such file {str(path)!r}")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            raise ConfigError(f"--config: expected a .toml or .json file, got {str(path)!r}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path}: not valid {path.suffix[1:].upper()}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a table of key = value")
    return data


def expand_grid(axes: dict[str, list], seeds: list[int]) -> list[tuple[dict, int]]:
    """Every ``(overrides, seed)`` of the grid: the product of the axes' values (first axis slowest), seeds innermost."""
    names = list(axes)
    return [(dict(zip(names, combo)), seed) for combo in itertools.product(*(axes[n] for n in names)) for seed in seeds]
