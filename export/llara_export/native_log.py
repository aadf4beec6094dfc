"""llama.cpp's own output during the export goes to a log file, not the terminal.

Contract:
    log = NativeLog(path, title)             # appends "== title ==" and everything printed inside
        quantize(src, dst, ftype, output=lambda: log)   # llara_edge.llama.quantize
    log.tail(n) -> list[str]              # the last n non-empty lines written inside the block

llama.cpp and ggml print from C: through their log callback (llama-cpp-python installs one
that prints to Python's sys.stderr) and with plain fprintf/printf on file descriptors 2 and 1.
Both levels are redirected for the block: sys.stdout / sys.stderr are swapped for the log
file, and descriptors 1 and 2 are dup2'ed onto it. Python's streams and C's stdio buffers are
flushed on entry (nothing printed before lands in the log) and on exit (nothing printed inside
leaks to the terminal later), and everything is restored in `finally`, on an exception or an
interrupt too. A descriptor that is not open (a daemon without stdout) is left alone.
llama-cpp-python's log callback prints only what its logger's level lets through, and the
runtime's gguf engine raises that level to ERROR process-wide: inside the block the level is
lowered to DEBUG (every line of llama.cpp goes to the log) and restored after. The
export's progress bar and parity table are printed outside these blocks, so they stay on
the terminal (export/llara_export/cli.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from pathlib import Path

from llara_edge.errors import ArtifactError

_STD_FDS = (1, 2)
_LLAMA_LOGGER = logging.getLogger("llama-cpp-python")  # llama_cpp._logger's


def _flush_all() -> None:
    """Python's sys.stdout/sys.stderr, then every C stdio stream (fflush(NULL))."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or odd replacement stream
            stream.flush()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


class NativeLog:
    """Redirect Python- and C-level stdout/stderr into `path` (module docstring)."""

    def __init__(self, path: str | Path, title: str = ""):
        self.path, self.title = Path(path), title
        self._saved: dict[int, int] = {}
        self._streams: tuple = ()
        self._start = 0

    def __enter__(self) -> NativeLog:
        _flush_all()
        try:
            self._text = open(self.path, "a", encoding="utf-8", errors="replace",
                              buffering=1)
        except OSError as err:
            raise ArtifactError(f"cannot write the export log {self.path}: {err}") from err
        if self.title:
            self._text.write(f"== {self.title} ==\n")
        self._text.flush()
        self._start = os.lseek(self._text.fileno(), 0, os.SEEK_END)
        self._streams = (sys.stdout, sys.stderr)
        self._level = _LLAMA_LOGGER.level
        _LLAMA_LOGGER.setLevel(logging.DEBUG)
        sys.stdout = sys.stderr = self._text
        for fd in _STD_FDS:
            try:
                self._saved[fd] = os.dup(fd)
            except OSError:  # not open: nothing to redirect
                continue
            os.dup2(self._text.fileno(), fd)
        return self

    def __exit__(self, *exc) -> None:
        try:
            _flush_all()
        finally:
            for fd, saved in self._saved.items():
                os.dup2(saved, fd)
                os.close(saved)
            self._saved.clear()
            sys.stdout, sys.stderr = self._streams
            _LLAMA_LOGGER.setLevel(self._level)
            self._text.close()

    def tail(self, n: int = 3) -> list[str]:
        """The last `n` non-empty lines written since the block began."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._start)
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][-n:]
