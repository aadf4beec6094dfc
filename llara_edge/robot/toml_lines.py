"""Line numbers of the tables and keys of a TOML text (tomllib reports none for them).

Contract:
    key_lines(text) -> {path: line}
        path: tuple of str keys and int indices, as in the parsed data: ("bus",),
        ("bus", "baudrate"), ("joints", 1, "lower_rad"), ("workspace", "min", 2).
        line: 1-based line of a table header (`[a.b]`: the first header that names the
        table), of a key (dotted keys `a.b = 1` name each prefix), of an array-of-tables
        entry (`[[joints]]`; the array itself: its first header), of an inline table's key,
        and of each array element.
Only called on text that tomllib has already parsed (valid TOML): the scanner does not check
syntax again. Where it cannot follow the text, the map stops there: a path without an entry
has no known line, and callers say so rather than guess.
"""

from __future__ import annotations

import contextlib
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}\n#")  # a number, bool or date ends at one of these
KeyPath = tuple  # of str | int


class _Stop(Exception):
    """The scanner met something it does not follow (it never happens on valid TOML)."""


class _Scanner:
    def __init__(self, text: str):
        self.s, self.i, self.line = text, 0, 1
        self.lines: dict[KeyPath, int] = {}
        self.aot: dict[KeyPath, int] = {}  # array of tables (resolved path) -> entries so far

    # -- characters
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def advance(self, n: int = 1) -> None:
        self.line += self.s.count("\n", self.i, self.i + n)
        self.i += n

    def skip(self, newlines: bool) -> None:
        """Spaces, tabs, comments and (with `newlines`) line breaks."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            else:
                return

    def expect(self, token: str) -> None:
        if not self.s.startswith(token, self.i):
            raise _Stop(f"expected {token!r} at line {self.line}")
        self.advance(len(token))

    def note(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)

    # -- keys
    def key(self) -> list[str]:
        """A dotted key: bare, "basic" or 'literal' parts separated by dots."""
        parts = []
        while True:
            self.skip(newlines=False)
            parts.append(self.key_part())
            self.skip(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    def key_part(self) -> str:
        c = self.peek()
        if c in ('"', "'"):
            start = self.i
            self.string()  # its value exactly as TOML reads it (escapes and all):
            return next(iter(tomllib.loads(f"{self.s[start:self.i]} = 0")))
        j = self.i
        while j < len(self.s) and self.s[j] in _BARE:
            j += 1
        if j == self.i:
            raise _Stop(f"no key at line {self.line}")
        part, self.i = self.s[self.i:j], j
        return part

    # -- values
    def string(self) -> None:
        """Skip one string of any of TOML's four kinds."""
        quote = self.peek()
        if self.s.startswith(quote * 3, self.i):
            self.advance(3)
            while not self.s.startswith(quote * 3, self.i):
                if self.i >= len(self.s):
                    raise _Stop("unterminated string")
                self.advance(2 if quote == '"' and self.peek() == "\\" else 1)
            self.advance(3)
            while self.peek() == quote:  # up to two quotes may end the content
                self.advance()
            return
        self.advance()
        while self.peek() != quote:
            if self.peek() in ("", "\n"):
                raise _Stop("unterminated string")
            self.advance(2 if quote == '"' and self.peek() == "\\" else 1)
        self.advance()

    def value(self, path: KeyPath) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.array(path)
        elif c == "{":
            self.inline_table(path)
        else:
            j = self.i
            while j < len(self.s) and self.s[j] not in _SCALAR_END:
                j += 1
            self.i = j

    def array(self, path: KeyPath) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip(newlines=True)
            if self.peek() == "]":
                break
            self.note((*path, index), self.line)
            self.value((*path, index))
            index += 1
            self.skip(newlines=True)
            if self.peek() == ",":
                self.advance()
        self.expect("]")

    def inline_table(self, path: KeyPath) -> None:
        self.expect("{")
        while True:
            self.skip(newlines=True)
            if self.peek() == "}":
                break
            self.keyval(path)
            self.skip(newlines=True)
            if self.peek() == ",":
                self.advance()
        self.expect("}")

    def keyval(self, table: KeyPath) -> None:
        line = self.line
        parts = self.key()
        self.expect("=")
        for k in range(1, len(parts) + 1):
            self.note((*table, *parts[:k]), line)
        self.skip(newlines=False)
        self.value((*table, *parts))

    # -- tables
    def header(self) -> KeyPath:
        """`[a.b]` or `[[a.b]]`: the resolved path of the table it opens."""
        line, is_array = self.line, self.s.startswith("[[", self.i)
        self.expect("[[" if is_array else "[")
        parts = self.key()
        self.expect("]]" if is_array else "]")
        path: KeyPath = ()
        for k, part in enumerate(parts):
            path = (*path, part)
            if is_array and k == len(parts) - 1:
                count = self.aot.get(path, 0)
                self.aot[path] = count + 1
                self.note(path, line)
                path = (*path, count)
            elif path in self.aot:  # a table inside the last entry of an array of tables
                path = (*path, self.aot[path] - 1)
            self.note(path, line)
        return path

    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip(newlines=True)
            if self.i >= len(self.s):
                return
            if self.peek() == "[":
                table = self.header()
            else:
                self.keyval(table)


def key_lines(text: str) -> dict[KeyPath, int]:
    """{path: 1-based line} of every table and key of a valid TOML text (module docstring)."""
    scanner = _Scanner(text)
    with contextlib.suppress(_Stop, ValueError):  # keep the lines found so far
        scanner.document()
    return scanner.lines
