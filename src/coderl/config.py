"""Building every configuration the same way: typed dataclasses from YAML and ``key=value`` overrides.

The demo (:class:`coderl.pipelines.demo.DemoConfig`), the recipe (:class:`coderl.pipelines.recipe.RecipeConfig`)
and the RL settings (:class:`coderl.rl.config.RLConfig`) are dataclasses whose fields are documented once, on the
class, and whose ``__post_init__`` is the only place that checks combinations. This module turns a (partial)
mapping into one of them: an unknown key or a value of the wrong type is an error naming the file and the field,
fields left out keep their defaults, and ``key=value`` overrides (command-line flags included) are applied to the
mapping before it is built, so a flag and the same key in a file go through the same checks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "apply_overrides", "build", "deep_merge", "parse_override", "read_yaml"]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file (or "overrides") and the field."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` (from YAML) fits the annotation ``tp`` (int, float, str, bool, X | None, list[str])."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        return isinstance(value, list | tuple) and all(inner is Any or _matches(v, inner) for v in value)
    return True


def _wants_float(tp: Any) -> bool:
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return float in args and int not in args and str not in args


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return s.strip().lower() not in ("nan", "inf", "-inf", "infinity")


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise ConfigError(f"field '{f.name}' has no default and must be given")


def build(cls: type, data: Any, where: str, prefix: str = "", defaults: Any = None) -> Any:
    """``cls`` from a partial mapping ``data`` (read from ``where``, named in errors).

    Fields ``data`` leaves out keep ``defaults``' values when given (any object with the fields as attributes),
    else the fields' own declared defaults (not those of ``cls()``, whose ``__post_init__`` may have filled
    some in). Nested dataclass fields are built the same way from nested mappings. Unknown keys and wrong types
    are :class:`ConfigError` naming ``prefix + key``; a number written as a string (YAML 1.1 reads ``1e-5``
    without a dot as one) or an int where a float is wanted is converted."""
    section = prefix.rstrip(".") or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: '{section}' must be a mapping of settings, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    flds = {f.name: f for f in dataclasses.fields(cls)}
    kw: dict[str, Any] = {}
    for name, f in flds.items():
        if name not in data:
            kw[name] = getattr(defaults, name) if defaults is not None else _field_default(f)
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in flds:
            raise ConfigError(f"{where}: unknown field '{name}' (known in '{section}': {', '.join(sorted(flds))})")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            inner = getattr(defaults, key) if defaults is not None else _field_default(flds[key])
            kw[key] = build(tp, value, where, name + ".", inner)
            continue
        if _wants_float(tp) and (isinstance(value, int) and not isinstance(value, bool)
                                 or isinstance(value, str) and _looks_numeric(value)):
            value = float(value)
        if not _matches(value, tp):
            raise ConfigError(f"{where}: field '{name}' must be {_type_name(tp)}, got {value!r}")
        kw[key] = value
    try:
        return cls(**kw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {section}: {e}") from None


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, section by section (neither is modified)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"rl.lr=1e-5"`` -> (["rl", "lr"], 1e-05). Values are YAML (numbers, true/false, null, [a, b])."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. sampling.n=4")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ConfigError(f"override {text!r}: empty part in the key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({e})") from None
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` with each ``key=value`` of ``overrides`` set (nested keys with dots); ``data`` is not modified."""
    data = deep_merge({}, data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: '{part}' is a value, not a section")
            node = nxt
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (empty file: ``{}``); a missing, unreadable or malformed file, or one
    that is not a mapping, is a :class:`ConfigError` naming it."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data
