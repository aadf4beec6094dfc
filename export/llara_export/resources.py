"""Wall time and peak resident memory per export stage (the `progress` messages are stages).

Contract:
    meter = StageMeter()
    say = meter.wrap(progress)        # each call ends the running stage and starts a new one
    ...; meter.close()                # ends the last stage
    meter.stages -> [{"stage", "seconds", "peak_rss_mb", "start_rss_mb", "peak_anon_mb"}, ...]
    format_stages(stages) -> str

Peak RSS of a stage is the process's high-water mark (VmHWM in /proc/self/status, MiB)
reset at the stage start by writing "5" to /proc/self/clear_refs (Linux >= 4.0). Where the
reset is refused, a sampling thread (every `interval_s`) records the largest VmRSS instead
and the stage says "sampled". llama.cpp's quantiser runs in this process, so its memory is
counted; nothing in the export runs in a child process.

RSS counts file-backed pages too: memory-mapped safetensors, GGUF and ONNX external data
(onnxruntime runs a large llm.onnx from the mapped file) are resident while touched, but
the kernel can drop and re-read them under pressure. `peak_anon_mb` is the part it cannot:
the largest RssAnon the sampling thread saw in the stage (sampled, so a spike shorter than
`interval_s` can be missed; None where /proc has no RssAnon).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _status_mb(key: str) -> float | None:
    """A kB field of /proc/self/status in MiB (None where /proc is missing)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _reset_peak() -> bool:
    try:
        _CLEAR.write_text("5")
        return True
    except OSError:
        return False


class StageMeter:
    """Times and peak-RSS of consecutive stages (module docstring)."""

    def __init__(self, interval_s: float = 0.05):
        self.stages: list[dict] = []
        self._name: str | None = None
        self._t0 = 0.0
        self._start_rss: float | None = None
        self._resettable = False
        self._sampled = 0.0
        self._anon: float | None = None
        self._interval = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a sample read before a reset must not land after it
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                self._sampled = max(self._sampled, _status_mb("VmRSS") or 0.0)
                self._anon = _max(self._anon, _status_mb("RssAnon"))

    def _end(self) -> None:
        if self._name is None:
            return
        with self._lock:
            peak = _status_mb("VmHWM") if self._resettable else None
            peak = max(peak or 0.0, self._sampled)  # the sampler never exceeds a true VmHWM
            anon = _max(self._anon, _status_mb("RssAnon"))
        self.stages.append({"stage": self._name, "seconds": time.perf_counter() - self._t0,
                            "start_rss_mb": self._start_rss, "peak_rss_mb": peak,
                            "peak_anon_mb": anon,
                            "method": "VmHWM" if self._resettable else "sampled"})
        self._name = None

    def start(self, name: str) -> None:
        self._end()
        if self._thread is None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        with self._lock:
            self._resettable = _reset_peak()
            self._start_rss = _status_mb("VmRSS")
            self._sampled = self._start_rss or 0.0
            self._anon = _status_mb("RssAnon")
        self._name, self._t0 = name, time.perf_counter()

    def close(self) -> None:
        self._end()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def wrap(self, say: Callable[[str], None]) -> Callable[[str], None]:
        def staged(message: str) -> None:
            self.start(message)
            say(message)

        return staged


def format_stages(stages: list[dict]) -> str:
    """A readable table: stage, seconds, RSS at start and peak, anonymous peak (MiB)."""
    lines = [f"{'stage':58s} {'s':>8s} {'start MiB':>10s} {'peak MiB':>10s} {'anon MiB':>9s}"]
    for s in stages:
        start = f"{s['start_rss_mb']:.0f}" if s["start_rss_mb"] is not None else "-"
        anon = s.get("peak_anon_mb")
        anon = f"{anon:.0f}" if anon is not None else "-"
        lines.append(f"{s['stage'][:58]:58s} {s['seconds']:8.2f} {start:>10s} "
                     f"{s['peak_rss_mb']:10.0f} {anon:>9s}")
    return "\n".join(lines)
