"""Plants: what makes time pass for the arm. `RealTimePlant` is the real robot's.

Contract (the simulator's plant, `llara_edge.sim.bridge.SimBridge`, has the same shape):
- `advance(dt)`: let `dt` seconds of robot time pass after a goal was written;
  `settle(seconds)`: wait with the goals held; `set_tool(tool)`: the tool a primitive uses;
  `time`: seconds.
- `RealTimePlant` keeps a fixed-rate schedule with `time.sleep`; `overruns` counts ticks that
  started more than one period late.
Units: seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RealTimePlant:
    """Wall-clock pacing for real hardware: advance(dt) sleeps until the next tick."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None
        self.overruns = 0  # ticks that started late by more than one period

    @property
    def time(self) -> float:
        return self._clock()

    def advance(self, dt: float) -> None:
        now = self._clock()
        if self._next is None or now > self._next + dt:  # first tick, or a period behind
            self.overruns += self._next is not None
            self._next = now
        self._next += dt
        self._sleep(max(0.0, self._next - self._clock()))

    def settle(self, seconds: float) -> None:
        self._sleep(seconds)
        self._next = None

    def set_tool(self, tool: str) -> None:
        """A real tool is what is mounted; nothing to switch."""
