"""A dependency-free step progress bar for long commands (the export), drawn on stderr.

Contract:
    bar = ProgressBar(total_steps, label="export", stream=sys.stderr)
    bar("quantising llm-q8_0.gguf")     # one call = one step started
    bar.close()                         # ends the bar's line (always call it, e.g. in finally)

On a terminal the bar is redrawn in place:
    [export] [########............]  7/17  0:42  quantising llm-q8_0.gguf
elsewhere (logs, pipes, pytest capture) each step is one such line, so logs stay readable.
The time is the elapsed wall time since the bar was created (m:ss). A step beyond `total`
grows the total instead of overflowing the bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from llara_edge.errors import ConfigError


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class ProgressBar:
    def __init__(self, total: int, label: str = "export", stream: TextIO | None = None,
                 width: int = 20, clock: Callable[[], float] = time.monotonic):
        if total < 1 or width < 1:
            raise ConfigError(f"progress bar needs total >= 1 and width >= 1, got {total}, {width}")
        self.total, self.label, self.width = total, label, width
        self.stream = stream or sys.stderr
        self.clock, self.start = clock, clock()
        self.step = 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open = False  # a tty line is drawn and not yet ended

    def line(self, message: str) -> str:
        """The text of the bar at the current step."""
        filled = self.width * self.step // self.total
        bar = "#" * filled + "." * (self.width - filled)
        digits = len(str(self.total))
        return (f"[{self.label}] [{bar}] {self.step:>{digits}}/{self.total}  "
                f"{_clock_text(self.clock() - self.start)}  {message}")

    def __call__(self, message: str) -> None:
        self.step += 1
        self.total = max(self.total, self.step)
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line(message))
            self._open = True
        else:
            self.stream.write(self.line(message) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
