"""Watchdog and stop requests: the arm is held when the loop stalls or is told to stop.

Contract:
- `Watchdog(hold)` runs a daemon thread that polls every `poll_s`. Code wrapped in
  `with watchdog.guard(stage, deadline_s) as d:` that runs past its deadline makes the
  thread call `hold(reason)` once (from the watchdog thread, while the loop is still blocked,
  e.g. in a stalled policy call) and sets `d.expired`; the loop must then discard that
  stage's result. `fired` lists every reason.
- `request_stop(reason)` (async-signal-safe: only sets an Event and a string) asks the loop
  to stop; the loop polls `stop_requested` between setpoints and stages and calls
  `acknowledge_stop()` when it performs the controlled stop itself. If it has not done so
  within `grace_s` (blocked somewhere), the watchdog thread holds the arm.
- `StopSignals(watchdog)` installs SIGINT/SIGTERM handlers that call `request_stop` (in the
  main thread only; elsewhere it is a no-op) and restores the previous handlers on exit.
- `hold` must not raise: failures are recorded in `hold_errors`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from llara_edge.errors import REPORTED


@dataclass
class Deadline:
    """One guarded stage: `expired` turns True when the watchdog fired for it."""

    stage: str
    deadline_s: float
    start: float
    expired: bool = False

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.start


class Watchdog:
    """Deadline and stop monitor in a background thread (see the module docstring)."""

    def __init__(self, hold: Callable[[str], None], grace_s: float = 0.1,
                 poll_s: float = 0.005):
        self._hold = hold
        self.grace_s, self.poll_s = grace_s, poll_s
        self.fired: list[str] = []  # reasons the watchdog held the arm
        self.hold_errors: list[str] = []
        self._armed: Deadline | None = None
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self.stop_reason = ""
        self._stop_at = 0.0
        self._stop_acknowledged = False
        self._stop_held = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watchdog")
        self._thread.start()

    # -- deadlines
    @contextmanager
    def guard(self, stage: str, deadline_s: float) -> Iterator[Deadline]:
        d = Deadline(stage, deadline_s, time.monotonic())
        with self._lock:
            self._armed = d
        try:
            yield d
        finally:
            with self._lock:
                if self._armed is d:
                    self._armed = None

    # -- stop requests
    def request_stop(self, reason: str) -> None:
        """Ask for a controlled stop (safe to call from a signal handler)."""
        if not self._stop_event.is_set():
            self.stop_reason = reason
            self._stop_at = time.monotonic()
            self._stop_event.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_event.is_set()

    def acknowledge_stop(self) -> None:
        self._stop_acknowledged = True

    # -- thread
    def _run(self) -> None:
        while not self._closing.wait(self.poll_s):
            now = time.monotonic()
            with self._lock:
                d = self._armed
                due = d is not None and not d.expired and now - d.start > d.deadline_s
                if due:
                    d.expired = True
            if due:
                self._fire(f"watchdog: {d.stage} exceeded its {d.deadline_s:.3g} s deadline")
            if (self._stop_event.is_set() and not self._stop_acknowledged
                    and not self._stop_held and now - self._stop_at > self.grace_s):
                self._stop_held = True
                self._fire(f"stop requested ({self.stop_reason}), loop busy: held by watchdog")

    def _fire(self, reason: str) -> None:
        self.fired.append(reason)
        try:
            self._hold(reason)
        except REPORTED as exc:
            self.hold_errors.append(f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=2.0)

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class StopSignals:
    """SIGINT / SIGTERM -> `watchdog.request_stop("SIGINT")` while the context is active."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, watchdog: Watchdog):
        self.watchdog = watchdog
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame) -> None:
        self.watchdog.request_stop(signal.Signals(signum).name)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
