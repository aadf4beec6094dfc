"""Command-line options made from a config dataclass's fields, so no command copies them by hand.

Contract:
    add_options(group, RuntimeConfig)            # --llm, --threads, --cache-type-k, ...
    RuntimeConfig(**values(args, RuntimeConfig), n_joints=5)   # what the command line said

A field is an option when its metadata says `cli: True` (RuntimeConfig's `opt(...)`); its
help and choices come from the metadata, its default and type from the field. Types: str, int,
bool (`--x/--no-x`), tuple[str, ...] (one comma-separated value: `--providers cuda,cpu`), and
`... | None` of those. The option's dest is the field's name; values are converted here and
validated by the dataclass itself (a ConfigError names the field).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing


def _cli_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli")]


def _base(tp) -> type:
    """The option's value type: X for X, X | None and tuple[X, ...]."""
    if isinstance(tp, str):
        raise TypeError(f"unresolved annotation {tp!r}")
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is tuple:
        return tuple
    if args and typing.get_origin(tp) is not None:
        return _base(args[0])
    return tp


def add_options(group, cls) -> None:
    """One option per CLI field of dataclass `cls`, on an argparse parser or group."""
    hints = typing.get_type_hints(cls)
    for f in _cli_fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind, help_text = _base(hints[f.name]), f.metadata["help"]
        choices = f.metadata.get("choices")
        if kind is bool:
            group.add_argument(flag, dest=f.name, default=f.default,
                               action=argparse.BooleanOptionalAction, help=help_text)
        elif kind is tuple:
            listed = f"; from {', '.join(choices)}" if choices else ""
            group.add_argument(flag, dest=f.name, default=",".join(f.default),
                               metavar="A,B", help=f"{help_text}{listed} (comma-separated)")
        else:
            group.add_argument(flag, dest=f.name, type=kind, default=f.default,
                               choices=choices, help=help_text)


def values(args: argparse.Namespace, cls) -> dict:
    """{field: value} of the CLI fields as given on the command line (tuples split)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in _cli_fields(cls):
        value = getattr(args, f.name)
        if _base(hints[f.name]) is tuple and isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        out[f.name] = value
    return out
