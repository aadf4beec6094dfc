"""Jetson power mode (nvpmodel -q) and power draw (tegrastats) for the benchmark report.

Contract:
    power_mode() -> {"available": bool, "mode": str, "id": int | None, "raw": str}
                    or {"available": False, "reason": "..."} off Jetson
    with TegraStats(interval_ms=100) as ts: ...   # samples power rails while the block runs
    ts.result() -> {"available": True, "samples": n, "rails": {rail: {"mean_mw", "max_mw"}},
                    "total_mean_mw", "total_source"} | {"available": False, "reason": ...}
    parse_tegrastats_line(line) -> {rail: current mW}

tegrastats prints one line per interval with rails as `NAME 4851mW/4851mW` (current/average;
JetPack 5-6 on Orin). The total is the module input rail VDD_IN where the board reports it
(Orin NX / Nano), else the sum of the rails printed (AGX Orin has no VDD_IN). Off Jetson,
both functions report why they were skipped instead of raising: a benchmark on a laptop
still produces a report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading

_RAIL_RE = re.compile(r"\b([A-Z][A-Z0-9_]+) (\d+)mW/(\d+)mW")
_MODE_RE = re.compile(r"NV Power Mode:\s*(\S+)\s*(?:\n\s*(\d+))?")


def power_mode() -> dict:
    """The nvpmodel power mode, or why it is unknown."""
    exe = shutil.which("nvpmodel")
    if exe is None:
        return {"available": False, "reason": "nvpmodel not found (not a Jetson)"}
    try:
        proc = subprocess.run([exe, "-q"], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"available": False, "reason": f"nvpmodel -q failed: {err}"}
    match = _MODE_RE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        return {"available": False,
                "reason": f"nvpmodel -q exit {proc.returncode}: {proc.stderr.strip()[:200]}"}
    mode_id = int(match.group(2)) if match.group(2) else None
    return {"available": True, "mode": match.group(1), "id": mode_id, "raw": proc.stdout.strip()}


def parse_tegrastats_line(line: str) -> dict[str, int]:
    """{rail: instantaneous mW} of one tegrastats line (empty when it has no rails)."""
    return {name: int(cur) for name, cur, _avg in _RAIL_RE.findall(line)}


class TegraStats:
    """Runs tegrastats in the background while the `with` block runs."""

    def __init__(self, interval_ms: int = 100):
        self.interval_ms = interval_ms
        self.samples: list[dict[str, int]] = []
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._reason = ""

    def __enter__(self) -> TegraStats:
        exe = shutil.which("tegrastats")
        if exe is None:
            self._reason = "tegrastats not found (not a Jetson)"
            return self
        try:
            self._proc = subprocess.Popen([exe, "--interval", str(self.interval_ms)],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          text=True)
        except OSError as err:
            self._reason = f"tegrastats failed to start: {err}"
            return self
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            rails = parse_tegrastats_line(line)
            if rails:
                self.samples.append(rails)

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def result(self) -> dict:
        if not self.samples:
            return {"available": False,
                    "reason": self._reason or "tegrastats printed no power rails"}
        return summarize_rails(self.samples)


def summarize_rails(samples: list[dict[str, int]]) -> dict:
    """Mean/max per rail and the module total (VDD_IN, else the sum of rails)."""
    rails: dict[str, list[int]] = {}
    for sample in samples:
        for name, mw in sample.items():
            rails.setdefault(name, []).append(mw)
    table = {name: {"mean_mw": sum(v) / len(v), "max_mw": max(v)} for name, v in rails.items()}
    if "VDD_IN" in table:
        total, source = table["VDD_IN"]["mean_mw"], "VDD_IN"
    else:
        total, source = sum(r["mean_mw"] for r in table.values()), "sum of rails"
    return {"available": True, "samples": len(samples), "rails": table,
            "total_mean_mw": total, "total_source": source}
