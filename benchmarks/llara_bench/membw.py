"""This machine's memory bandwidth, measured with NumPy STREAM-style copy and read streams.

Contract:
    measure_bandwidth(BandwidthConfig(mib=256, repeats=10, threads=None)) -> dict
        {"copy_gbps", "read_gbps": best over thread counts, "by_threads": {n: copy GB/s},
         "read_by_threads": {n: read GB/s}, "mib", "repeats"}
    decode_bandwidth_fraction(bytes_per_token, tokens_per_s, machine_gbps) -> float

STREAM convention: a copy of B bytes moves 2B (read B + write B). The read stream is a
float64 dot product of each slice with itself (BLAS, pinned to one thread per slice): B
bytes read, nothing written. LLM decoding reads its weights and writes almost nothing, so
the read stream is its reference: a copy also pays the writes, and the decode of the ~1B f16
model once reached 1.38x the copy figure. The best of `repeats` timed runs counts (the least
disturbed by other processes; on the shared development VM the read stream still varied
42-51 GB/s between runs). Arrays are far larger than the last-level cache (256 MiB each by
default) and touched once before timing so that page faults are not measured. Each thread
works on its own contiguous slice (NumPy releases the GIL inside copyto and dot), since one
core alone rarely saturates the memory controller.
GB = 1e9 bytes.
"""

from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from llara_edge.errors import ConfigError


@dataclass(frozen=True)
class BandwidthConfig:
    mib: int = 256  # size of each of the two arrays
    repeats: int = 10
    threads: tuple[int, ...] | None = None  # None: 1 and os.cpu_count()

    def __post_init__(self) -> None:
        if self.mib < 8 or self.repeats < 1:
            raise ConfigError(f"need mib >= 8 and repeats >= 1, got {self.mib}, {self.repeats}")
        if self.threads is not None and (not self.threads or min(self.threads) < 1):
            raise ConfigError(f"threads must be positive counts, got {self.threads}")


def _best_s(part, n: int, threads: int, repeats: int) -> float:
    """Best wall time of `part(slice)` run over `threads` contiguous slices of [0, n)."""
    bounds = np.linspace(0, n, threads + 1).astype(int)
    slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(part, slices))
            best = min(best, time.perf_counter() - t0)
    return best


def _copy_gbps(src: np.ndarray, dst: np.ndarray, threads: int, repeats: int) -> float:
    def part(s: slice) -> None:
        np.copyto(dst[s], src[s])

    return 2 * src.nbytes / _best_s(part, src.size, threads, repeats) / 1e9


def _read_gbps(src: np.ndarray, threads: int, repeats: int) -> float:
    def part(s: slice) -> None:
        np.dot(src[s], src[s])  # reads the slice once (both operands are the same memory)

    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):  # our threads, not BLAS's, split the work
        return src.nbytes / _best_s(part, src.size, threads, repeats) / 1e9


def measure_bandwidth(cfg: BandwidthConfig | None = None) -> dict:
    """Best STREAM copy bandwidth in GB/s over the configured thread counts."""
    cfg = cfg or BandwidthConfig()
    counts = cfg.threads or tuple(sorted({1, os.cpu_count() or 1}))
    n = cfg.mib * (1 << 20) // 8
    src = np.ones(n, dtype=np.float64)  # written: every page is resident before timing
    dst = np.zeros(n, dtype=np.float64)
    np.copyto(dst, src)
    by_threads = {str(t): _copy_gbps(src, dst, t, cfg.repeats) for t in counts}
    read = {str(t): _read_gbps(src, t, cfg.repeats) for t in counts}
    return {"copy_gbps": max(by_threads.values()), "read_gbps": max(read.values()),
            "by_threads": by_threads, "read_by_threads": read,
            "mib": cfg.mib, "repeats": cfg.repeats}


def decode_bandwidth_fraction(bytes_per_token: float, tokens_per_s: float,
                              machine_gbps: float) -> float:
    """Achieved decode bandwidth (weights read per token x tokens/s) over the machine's."""
    if machine_gbps <= 0:
        raise ConfigError(f"machine bandwidth must be positive, got {machine_gbps}")
    return bytes_per_token * tokens_per_s / 1e9 / machine_gbps
