"""Minimal TOML writer for robot configs, and atomic text writes.

Reading uses the standard `tomllib` (Python >= 3.11) or `tomli`. Writing covers what a robot
config holds: nested tables, arrays of tables, strings, booleans, integers, floats (written
with round-trip precision, so a saved hand-eye transform reloads bit for bit) and (nested)
arrays of those scalars. `None` values are left out. Keys must be bare TOML keys.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from llara_edge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def loads(text: str, source: str = "TOML") -> dict:
    """Parsed TOML; a syntax error is a ConfigError naming `source`, with tomllib's line and
    column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def load(path: str | Path) -> dict:
    return loads(read_text(path), source=str(path))


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot write non-finite number {value} to TOML")
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _scalar(value.tolist())
    raise ConfigError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    if not _BARE_KEY.match(key):
        raise ConfigError(f"TOML key {key!r} is not a bare key")
    return key


def _is_table_array(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(v, Mapping) for v in value)


def _emit(table: Mapping, prefix: str, out: list[str], comments: Mapping[str, str]) -> None:
    """Scalars of `table` first, then its sub-tables and arrays of tables (TOML order)."""
    for key, value in table.items():
        if value is None or isinstance(value, Mapping) or _is_table_array(value):
            continue
        out.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in table.items():
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        if isinstance(value, Mapping):
            out.append("")
            if name in comments:
                out.append(f"# {comments[name]}")
            out.append(f"[{name}]")
            _emit(value, name, out, comments)
        elif _is_table_array(value):
            for item in value:
                out.append("")
                out.append(f"[[{name}]]")
                _emit(item, name, out, comments)


def dumps(data: Mapping, header: str = "", comments: Mapping[str, str] | None = None) -> str:
    """TOML text of `data`; `header` lines become leading comments, `comments[table]` a
    comment line above that table's header."""
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    _emit(data, "", out, comments or {})
    return "\n".join(out).strip("\n") + "\n"


def write_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
