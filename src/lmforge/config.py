"""Typed configs: dataclasses <-> argparse flags and TOML files (defaults < --config < flags)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

import tomllib

from lmforge.errors import InputError


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each dataclass field (it is the field's --help text)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, following in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _base_type(annotation: Any) -> tuple[type, bool]:
    """(scalar type, optional?) of a field annotation such as `int`, `float | None`, `str`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                    skip: tuple[str, ...] = ()) -> None:
    """Add one --flag per dataclass field; defaults are left as None so we can tell what was given."""
    docs = field_docs(cls)
    hints = _resolved_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} ({prefix.rstrip('.') or 'options'})")
    for field in dataclasses.fields(cls):
        if field.name in skip or not field.metadata.get("cli", True):
            continue
        kind, _ = _base_type(hints[field.name])
        flag = "--" + (prefix + field.name).replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = f"{docs.get(field.name, '')} (default: {default})".replace("%", "%%")
        extra = {"nargs": "?", "const": True, "type": _parse_bool} if kind is bool else {"type": kind}
        group.add_argument(flag, dest=(prefix + field.name).replace(".", "__"), default=None, help=help_text,
                           metavar=kind.__name__.upper(), **extra)


def values_from_args(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The fields of `cls` that were given on the command line."""
    given = {}
    for field in dataclasses.fields(cls):
        if not field.metadata.get("cli", True):
            continue
        value = getattr(args, (prefix + field.name).replace(".", "__"), None)
        if value is not None:
            given[field.name] = value
    return given


def build_config(cls: type, *layers: dict[str, Any], source: str = "config"):
    """Instantiate `cls` from layered dicts (later wins); unknown keys and bad values are input errors."""
    names = {f.name for f in dataclasses.fields(cls)}
    merged: dict[str, Any] = {}
    for layer in layers:
        unknown = set(layer) - names
        if unknown:
            raise InputError(f"{source}: unknown {cls.__name__} field(s) {sorted(unknown)}; "
                             f"valid fields are {sorted(names)}.")
        merged.update(layer)
    hints = _resolved_hints(cls)
    for name, value in merged.items():
        kind, optional = _base_type(hints[name])
        if value is None and optional:
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            merged[name] = float(value)
        elif not isinstance(value, kind):
            raise InputError(f"{source}: {cls.__name__}.{name} must be {kind.__name__}, got {value!r}.")
    try:
        return cls(**merged)
    except ValueError as error:
        raise InputError(f"{source}: {error}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML config file, with a one-line error naming it when it is missing or malformed."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found; check the path given to --config.") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: malformed TOML ({error}); fix the file or drop --config.") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(sections: dict[str, Any]) -> str:
    """Write {section: dataclass or dict} as TOML; None values are left out (they mean 'default')."""
    lines: list[str] = []
    for section, content in sections.items():
        values = dataclasses.asdict(content) if dataclasses.is_dataclass(content) else content
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None)
        lines.append("")
    return "\n".join(lines)
