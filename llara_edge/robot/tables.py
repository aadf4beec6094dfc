"""Strict reading of parsed TOML tables into config dataclasses: every bad name at once.

Contract:
    problems = Problems(source, lines)           # lines: toml_lines.key_lines(text) or {}
    obj = build(cls, table, path, problems)      # cls: a dataclass; None when anything was bad
    problems.raise_if_any()                      # ConfigError: one line naming every problem

`build` takes a dataclass's fields as the table's keys and their annotations as the types:
str, int, float, bool, `X | None`, fixed tuples `tuple[float, float, float]` (a list of that
length), open tuples `tuple[X, ...]`, nested dataclasses (a table) and `tuple[Dataclass, ...]`
(an array of tables). Each unknown table or key (with the nearest valid name), missing
required key, value of the wrong type (a string for a number, a list of the wrong length, a
non-finite float) and ConfigError of a dataclass's own checks is recorded with its path and,
where the TOML text tells, its line; nothing is built above a bad part, and nothing stops the
walk, so one load reports all of them.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import MISSING

from llara_edge.errors import ConfigError
from llara_edge.names import did_you_mean

KeyPath = tuple  # of str keys and int indices, as in the parsed data


def label(path: KeyPath) -> str:
    """("joints", 1, "id") -> "joints[1].id"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class Problems:
    """The problems found in one config source, each with its path and line."""

    def __init__(self, source: str, lines: dict[KeyPath, int] | None = None):
        self.source, self.lines = source, lines or {}
        self.items: list[tuple[int | None, str]] = []

    def add(self, path: KeyPath, message: str, shown: str = "", at: KeyPath | None = None):
        """`message` about `path` (shown as `shown`, default its dotted label), at the line of
        `at` (default: of `path` itself; no line where the text does not tell)."""
        line = self.lines.get(path if at is None else at)
        name = shown or label(path)
        self.items.append((line, f"{name}: {message}" if name else message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        items = sorted(self.items, key=lambda item: (item[0] is None, item[0] or 0))
        texts = [f"line {line}: {text}" if line else text for line, text in items]
        head = f"{self.source}: " if len(texts) == 1 else f"{self.source}: {len(texts)} errors: "
        raise ConfigError(head + " | ".join(texts))


def _hints(cls) -> dict[str, object]:
    return typing.get_type_hints(cls)


def _kind(hint) -> str:
    """"table", "array" (of tables) or "key": how a field of this type is written."""
    if dataclasses.is_dataclass(hint):
        return "table"
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args[-1:] == (Ellipsis,) and \
            dataclasses.is_dataclass(args[0]):
        return "array"
    return "key"


def _written_as(value) -> str:
    """"table", "array" (of tables) or "key": what a parsed value was written as."""
    if isinstance(value, dict):
        return "table"
    is_array = isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
    return "array" if is_array else "key"


def _show(name: str, kind: str, top: bool) -> str:
    if top and kind == "table":
        return f"[{name}]"
    return f"[[{name}]]" if top and kind == "array" else name


def _unknown(cls, key: str, value, path: KeyPath, problems: Problems) -> None:
    """An unknown name of `cls`'s table at `path`, with the nearest valid name."""
    hints = _hints(cls)
    top = not path  # top-level tables are shown as [name] / [[name]]
    kind = _written_as(value)
    what = {"table": "unknown table", "array": "unknown array of tables", "key": "unknown key"}
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    hint = did_you_mean(key, valid, lambda v: _show(v, _kind(hints[v]), top))
    full = (*path, key)
    shown = _show(label(full), kind, True) if kind != "key" else label(full)
    problems.add(full, f"{what[kind]}; {hint}", shown=shown)


def build(cls, table, path: KeyPath, problems: Problems):
    """An instance of dataclass `cls` from a parsed table, or None (problems recorded)."""
    if not isinstance(table, dict):
        problems.add(path, f"expected a table, got {_got(table)}")
        return None
    before = len(problems.items)
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key, value in table.items():
        if key not in fields:
            _unknown(cls, key, value, path, problems)
    kwargs = {}
    for name, f in fields.items():
        if name in table:
            kwargs[name] = convert(table[name], hints[name], (*path, name), problems)
        elif f.default is MISSING and f.default_factory is MISSING:
            problems.add((*path, name), "required key is missing", at=path)
    if len(problems.items) > before:
        return None
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # the dataclass's own value checks
        problems.add(path, str(exc))
        return None


def convert(value, hint, path: KeyPath, problems: Problems):
    """`value` as type `hint` (tuples for lists, float for int), or None (problem recorded)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = next(a for a in args if a is not type(None))
        return None if value is None else convert(value, inner, path, problems)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path, problems)
    if origin is tuple:
        return _tuple(value, args, path, problems)
    if (hint is bool and isinstance(value, bool)) or (hint is str and isinstance(value, str)):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    elif hint not in (bool, str, int, float):
        return value  # a type this reader does not check (none in the configs today)
    problems.add(path, f"expected {describe(hint)}, got {_got(value)}")
    return None


def _tuple(value, args: tuple, path: KeyPath, problems: Problems):
    open_length = args[-1:] == (Ellipsis,)
    hint = tuple.__class_getitem__(args)
    if not isinstance(value, list) or (not open_length and len(value) != len(args)):
        problems.add(path, f"expected {describe(hint)}, got {_got(value)}")
        return None
    element = (lambda i: args[0]) if open_length else (lambda i: args[i])
    before = len(problems.items)
    out = tuple(convert(v, element(i), (*path, i), problems) for i, v in enumerate(value))
    return None if len(problems.items) > before else out


def describe(hint) -> str:
    """What a value of type `hint` looks like in TOML: "a number", "a list of 3 numbers"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return describe(next(a for a in args if a is not type(None)))
    if dataclasses.is_dataclass(hint):
        return "a table"
    if origin is tuple:
        if args[-1:] == (Ellipsis,):
            inner = args[0]
            return "an array of tables" if dataclasses.is_dataclass(inner) else \
                f"a list of {_plural(inner)}"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list of {len(args)} values"
    return {bool: "true or false", int: "an integer", float: "a finite number",
            str: "a string"}.get(hint, str(hint))


def _plural(hint) -> str:
    text = describe(hint)
    for article in ("a ", "an "):
        if text.startswith(article):
            text = text[len(article):]
    return {"finite number": "numbers", "integer": "integers", "string": "strings"}.get(
        text, f"({text})")


def _got(value) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    kind = {bool: "boolean", int: "integer", float: "float", str: "string"}.get(
        type(value), type(value).__name__)
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"
