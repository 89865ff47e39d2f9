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
    """(scalar type, optional?) of a field annotation such as `int`, `float | None`, `str`; a list type
    `list[int]` is (list, ...) with its element type in `_element_type`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])[0], True
    return (list if origin is list else annotation), False


def _element_type(annotation: Any) -> type:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return (typing.get_args(annotation) or (str,))[0]


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _flag_name(field: dataclasses.Field, prefix: str) -> str:
    return field.metadata.get("flag") or "--" + (prefix + field.name).replace("_", "-")


def _add_field(group, field: dataclasses.Field, hint: Any, prefix: str, doc: str, switches: bool) -> None:
    """One argparse argument for one field, as its metadata asks: `positional`, `choices`, `required`,
    `append` (a repeatable flag), `flag` (another flag name; with a bool `invert` it stores False, as
    --no-int8 does), `negatable` (a bool that also has --no-NAME), `metavar`, `parse` (the function that
    reads a value, instead of the field's type)."""
    meta = field.metadata
    kind, _ = _base_type(hint)
    element = meta.get("parse") or (_element_type(hint) if kind is list else kind)
    dest = (prefix + field.name).replace(".", "__")
    default = field.default if field.default is not dataclasses.MISSING else None
    help_text = f"{doc} (default: {default})".replace("%", "%%") if not meta.get("required") else doc.replace("%", "%%")
    extra: dict[str, Any] = {"choices": meta["choices"]} if "choices" in meta else {}
    if meta.get("positional"):
        nargs = meta.get("nargs", "+" if kind is list else None)
        group.add_argument(dest, type=element, nargs=nargs, help=doc.replace("%", "%%"), metavar=meta.get("metavar"),
                           **({"default": None} if nargs in ("?", "*") else {}), **extra)
        return
    if kind is bool and meta.get("invert"):
        group.add_argument(_flag_name(field, prefix), dest=dest, action="store_const", const=False, default=None,
                           help=doc.replace("%", "%%"))
        return
    if kind is bool and switches:   # a plain switch: `--overwrite`, never `--overwrite false`
        group.add_argument(_flag_name(field, prefix), dest=dest, action="store_const", const=True, default=None,
                           help=help_text)
        if meta.get("negatable"):
            group.add_argument("--no-" + (prefix + field.name).replace("_", "-"), dest=dest, action="store_const",
                               const=False, help=argparse.SUPPRESS)
        return
    if kind is bool:
        extra.update(nargs="?", const=True, type=_parse_bool)
    elif kind is list:
        extra.update(type=element, **({"action": "append"} if meta.get("append") else
                                      {"nargs": meta.get("nargs", "+")}))
    else:
        extra.update(type=element)
    metavar = meta.get("metavar", getattr(_element_type(hint) if kind is list else kind, "__name__", "X").upper())
    group.add_argument(_flag_name(field, prefix), dest=dest, default=None, help=help_text, metavar=metavar,
                       required=bool(meta.get("required")), **extra)
    if kind is bool and meta.get("negatable"):
        group.add_argument("--no-" + (prefix + field.name).replace("_", "-"), dest=dest, action="store_const",
                           const=False, help=argparse.SUPPRESS)


def add_config_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                    skip: tuple[str, ...] = (), switches: bool = False) -> None:
    """Add one argument per dataclass field; defaults are left as None so we can tell what was given.
    The field's docstring is its --help text. Booleans take an optional value (`--compile`, `--compile
    false`), or with `switches` are plain switches (needed where positional arguments follow)."""
    docs = field_docs(cls)
    hints = _resolved_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} ({prefix.rstrip('.') or 'options'})")
    for field in dataclasses.fields(cls):
        if field.name in skip or not field.metadata.get("cli", True):
            continue
        _add_field(group, field, hints[field.name], prefix, docs.get(field.name, ""), switches)


def add_actions(parser: argparse.ArgumentParser, actions: dict[str, tuple[type, str]], json_actions: tuple[str, ...],
                aliases: dict[str, list[str]] | None = None) -> None:
    """Sub-verbs (`lmforge ngram train`, `... score`), each with the flags of its config dataclass; those in
    `json_actions` also take --json."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, (cls, help_text) in actions.items():
        action_parser = sub.add_parser(action, help=help_text, aliases=(aliases or {}).get(action, []))
        add_config_args(action_parser, cls, switches=True)
        if action in json_actions:
            action_parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


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


def config_from_args(cls: type, args: argparse.Namespace, *layers: dict[str, Any], prefix: str = ""):
    """`cls` built from its defaults, `layers` and then the command line."""
    return build_config(cls, *layers, values_from_args(args, cls, prefix), source="command line")


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
        merged[name] = _checked(cls, name, value, hints[name], source)
    try:
        return cls(**merged)
    except ValueError as error:
        raise InputError(f"{source}: {error}") from None


def _checked(cls: type, name: str, value: Any, hint: Any, source: str) -> Any:
    """`value` as field `name` of `cls` takes it (ints as floats, strings as paths, list elements checked)."""
    kind, optional = _base_type(hint)
    if value is None and optional:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is Path and isinstance(value, str):
        return Path(value)
    if kind is list and isinstance(value, (list, tuple)):
        element = _element_type(hint)
        return [_checked(cls, name, v, element, source) for v in value]
    if not isinstance(value, kind):
        raise InputError(f"{source}: {cls.__name__}.{name} must be {kind.__name__}, got {value!r}.")
    return value


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
    if isinstance(value, Path):
        value = str(value)
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
