"""Camera base: `CameraConfig`, the `Frame` every camera delivers, the `Camera` ABC with its
background reader, depth lookup with hole handling, and the registry of camera kinds.

Contract:
- `make_camera(CameraConfig(kind=...), **resources)` builds the backend registered under
  `kind` ("sim", "software-realsense", "realsense", "file"); `resources` go to its constructor
  (`env=` a `TabletopEnv` for the simulator kinds, `context=` an `rs.context` for realsense).
- `camera.connect()` opens the source; `read()` returns the next frame from the source;
  `async_read()` returns the newest frame captured by a background reader thread (started on
  first use), waiting up to `timeout_s` when none newer than the last one it returned exists.
  Both raise `DeviceError` on timeout (naming the camera and the last reader error) and
  `EndOfStream` (a `DeviceError`) when a recording or file is exhausted. `close()` stops the
  reader and releases the device; cameras are context managers.
- A `Frame` holds colour as (H, W, 3) uint8 RGB, depth as (H, W) float32 metres (z along the
  optical axis, RealSense convention) with NaN where the sensor has no data, the colour
  intrinsics, and a timestamp in seconds. Depth lies on the colour pixel grid unless
  `depth_intrinsics` says otherwise (a RealSense with alignment turned off).
- `depth_at(frame, u, v, radius)` is the median of the valid depths in the (2r+1)^2 square
  around pixel (u, v) (pixel (u, v) covers [u, u+1) x [v, v+1), librealsense convention);
  without any valid depth it raises `DepthError` naming the pixel, never returns 0.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llara_drivers.camera_model import Intrinsics
from llara_drivers.errors import DepthError, DeviceError, DriverConfigError
from llara_drivers.registry import Registry

READER_POLL_S = 0.25  # longest single wait of the background reader (s)


class EndOfStream(DeviceError):
    """A recording, file or frame directory has no more frames."""


# ----------------------------------------------------------------------------- config
@dataclass
class CameraConfig:
    """Camera settings; fields a backend does not use are ignored by it."""

    kind: str = "sim"  # registry key: "sim" | "software-realsense" | "realsense" | "file"
    width: int = 640  # colour (and aligned depth) size in pixels
    height: int = 480
    fps: int = 30  # stream rate (realsense) or virtual clock rate (software-realsense)
    serial: str = ""  # realsense: device serial number; "" = the only connected device
    depth: bool = True  # deliver depth
    align_depth: bool = True  # realsense: depth re-projected onto the colour grid (rs.align)
    depth_width: int = 0  # realsense depth stream size when not aligned to it; 0 = colour size
    depth_height: int = 0
    hole_radius: int = 2  # depth_at neighbourhood half-size used by callers (px)
    timeout_s: float = 2.0  # longest wait for one frame
    path: str = ""  # file: .npz / PNG directory / video; realsense: recording to play back
    record_path: str = ""  # realsense / software-realsense: record the streams (.db3)
    loop: bool = False  # file source and playback: start over at the end instead of EndOfStream
    playback_real_time: bool = False  # playback paced by the recording's clock (may drop)
    depth_scale: float = 0.001  # m per unit of 16-bit depth without its own scale (file, sim)
    sim_task: str = "visual_manipulation"  # sim kinds without an env: episode to render
    sim_level: str = "L1"
    sim_seed: int = 0

    def __post_init__(self) -> None:
        if not self.kind:
            raise DriverConfigError("camera kind must be set")
        if self.width <= 0 or self.height <= 0:
            raise DriverConfigError(f"camera size must be positive, got {self.width}x{self.height}")
        if self.depth_width < 0 or self.depth_height < 0:
            raise DriverConfigError("depth_width and depth_height must be >= 0 (0 = colour size)")
        if not 0 < self.fps <= 300:
            raise DriverConfigError(f"fps must be in (0, 300], got {self.fps}")
        if not 0 <= self.hole_radius <= 20:
            raise DriverConfigError(f"hole_radius must be in [0, 20] px, got {self.hole_radius}")
        if not 0 < self.timeout_s <= 60:
            raise DriverConfigError(f"timeout_s must be in (0, 60], got {self.timeout_s}")
        if not 0 < self.depth_scale < 1:
            raise DriverConfigError(f"depth_scale must be in (0, 1) m per unit, "
                                    f"got {self.depth_scale}")

    @property
    def depth_size(self) -> tuple[int, int]:
        """(width, height) of the depth stream."""
        return (self.depth_width or self.width, self.depth_height or self.height)


# ----------------------------------------------------------------------------- frame
@dataclass(frozen=True)
class Frame:
    """One capture: colour, optional depth in metres, intrinsics, time."""

    color: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray | None  # (Hd, Wd) float32 m, NaN = no data; None without a depth stream
    intrinsics: Intrinsics  # colour stream
    timestamp_s: float  # device clock (realsense), simulated time (sim), file time (file)
    frame_number: int  # colour frame counter of the source
    depth_scale: float | None = None  # m per raw depth unit of the source (its quantisation)
    depth_intrinsics: Intrinsics | None = None  # None: depth lies on the colour grid

    def __post_init__(self) -> None:
        h, w = self.intrinsics.height, self.intrinsics.width
        if self.color.shape != (h, w, 3) or self.color.dtype != np.uint8:
            raise ValueError(f"colour must be ({h}, {w}, 3) uint8, got {self.color.shape} "
                             f"{self.color.dtype}")
        if self.depth is not None:
            di = self.depth_grid
            if self.depth.shape != (di.height, di.width) or self.depth.dtype != np.float32:
                raise ValueError(f"depth must be ({di.height}, {di.width}) float32 metres, got "
                                 f"{self.depth.shape} {self.depth.dtype}")

    @property
    def depth_grid(self) -> Intrinsics:
        """Intrinsics of the depth image's pixel grid."""
        return self.depth_intrinsics or self.intrinsics

    def depth_units(self, scale: float | None = None) -> np.ndarray:
        """Depth as RealSense-style uint16 (units of `scale` m, default the source's), 0 = none.

        For code written against raw D400 depth (e.g. `llara_edge.sim.perception`)."""
        if self.depth is None:
            raise DepthError("this frame has no depth stream")
        step = scale or self.depth_scale or 0.001
        valid = np.isfinite(self.depth) & (self.depth > 0)
        units = np.rint(np.where(valid, self.depth, 0.0) / step)
        if units.max(initial=0) > np.iinfo(np.uint16).max:
            raise DepthError(f"depth beyond {np.iinfo(np.uint16).max * step:.1f} m does not fit "
                             f"uint16 units of {step} m")
        return units.astype(np.uint16)


def units_to_metres(units: np.ndarray, depth_scale: float) -> np.ndarray:
    """uint16 depth units (H, W) -> float32 metres (float64 product), 0 (no data) -> NaN."""
    metres = (units.astype(np.float64) * depth_scale).astype(np.float32)
    metres[units == 0] = np.nan
    return metres


def depth_at(frame: Frame, u: float, v: float, radius: int = 2) -> float:
    """Median valid depth (m) in the (2r+1)^2 square around pixel (u, v) of the depth grid."""
    if frame.depth is None:
        raise DepthError(f"no depth stream: cannot measure pixel ({u:.1f}, {v:.1f})")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    h, w = frame.depth.shape
    if not (math.isfinite(u) and math.isfinite(v)):
        raise DepthError(f"pixel ({u}, {v}) is not a finite image point")
    col, row = math.floor(u), math.floor(v)
    if not (0 <= col < w and 0 <= row < h):
        raise DepthError(f"pixel ({u:.1f}, {v:.1f}) is outside the {w}x{h} depth image")
    patch = frame.depth[max(0, row - radius):row + radius + 1,
                        max(0, col - radius):col + radius + 1]
    valid = patch[np.isfinite(patch) & (patch > 0)]
    if valid.size == 0:
        side = 2 * radius + 1
        raise DepthError(f"no valid depth within {side}x{side} px of pixel ({u:.1f}, {v:.1f})")
    return float(np.median(valid))


# ----------------------------------------------------------------------------- registry
# The simulator's cameras ("sim", "software-realsense") come from llara-edge's entry points
# (llara_edge.sim.cameras): the drivers know nothing of the simulator.
CAMERAS = Registry("camera kind", {
    "realsense": "llara_drivers.realsense.camera",
    "file": "llara_drivers.file_camera.camera",
}, attr="kind", group="llara_drivers.cameras")


def register_camera(kind: str) -> Callable[[type[Camera]], type[Camera]]:
    """Class decorator: make a Camera subclass available to `make_camera` under `kind`."""
    return CAMERAS.register(kind)


def camera_class(kind: str) -> type[Camera]:
    return CAMERAS.get(kind)


def make_camera(config: CameraConfig, **resources) -> Camera:
    """Instantiate (not connect) the backend registered for `config.kind`."""
    return camera_class(config.kind)(config, **resources)


# ----------------------------------------------------------------------------- camera
class Camera(ABC):
    """A frame source. Subclasses implement `_open`, `_grab` and `_release`.

    `_grab` blocks for the next frame of the source; it is called either by `read` in the
    caller's thread or by the background reader, never by both at once. Backends whose source
    must be driven from the caller's thread (the simulator: one GL context, physics stepping in
    the caller) set `threaded_reader = False`; their `async_read` is then `read`.
    """

    kind: ClassVar[str] = ""
    threaded_reader: ClassVar[bool] = True

    def __init__(self, config: CameraConfig):
        if config.kind != self.kind:
            raise DriverConfigError(f"{type(self).__name__} serves kind {self.kind!r}, "
                              f"config asks for {config.kind!r}")
        self.config = config
        self._connected = False
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._captured = 0  # frames the reader has published
        self._taken = 0  # value of _captured when async_read last returned
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._fatal: BaseException | None = None  # ends the reader (EndOfStream, bugs)
        self._last_error: BaseException | None = None  # transient reader error (timeouts)

    # -- backend hooks
    @abstractmethod
    def _open(self) -> None:
        """Open the device / file / simulator."""

    @abstractmethod
    def _grab(self, timeout_s: float) -> Frame:
        """The next frame of the source (blocking at most about `timeout_s`)."""

    @abstractmethod
    def _release(self) -> None:
        """Free the device; called once by close()."""

    # -- lifecycle
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> Camera:
        if not self._connected:
            with self._cond:  # a camera may be connected again after close()
                self._latest, self._fatal, self._last_error = None, None, None
                self._taken = self._captured
            self._open()
            self._connected = True
        return self

    def close(self) -> None:
        if not self._connected:
            return
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=self.config.timeout_s + 5.0)
            self._reader = None
        self._connected = False
        self._release()

    def __enter__(self) -> Camera:
        return self.connect()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- frames
    def read(self, timeout_s: float | None = None) -> Frame:
        """The next frame delivered by the source after this call."""
        self._require_connected()
        timeout = timeout_s or self.config.timeout_s
        if self._reader is not None:  # the reader owns the source
            with self._cond:
                return self._wait_after(self._captured, timeout)
        return self._grab(timeout)

    def async_read(self, timeout_s: float | None = None) -> Frame:
        """The newest frame from the background reader, newer than the last one returned."""
        self._require_connected()
        if not self.threaded_reader:
            return self.read(timeout_s)
        self._ensure_reader()
        with self._cond:
            return self._wait_after(self._taken, timeout_s or self.config.timeout_s)

    def _wait_after(self, seen: int, timeout: float) -> Frame:
        """Wait (condition held) until the reader published past `seen`; return the newest."""
        self._cond.wait_for(lambda: self._captured > seen or self._fatal is not None, timeout)
        if self._captured > seen:
            self._taken = self._captured
            return self._latest
        if self._fatal is not None:
            raise self._fatal
        cause = f"; last reader error: {self._last_error}" if self._last_error else ""
        raise DeviceError(f"{self.kind} camera: no new frame within {timeout:.2f} s{cause}")

    def _require_connected(self) -> None:
        if not self._connected:
            raise DeviceError(f"{self.kind} camera is not connected; call connect() first")

    def _ensure_reader(self) -> None:
        if self._reader is None:
            self._stop.clear()
            self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                             name=f"camera-{self.kind}")
            self._reader.start()

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            try:  # short waits, so that close() never waits long for the reader
                frame = self._grab(min(self.config.timeout_s, READER_POLL_S))
            except EndOfStream as exc:
                self._publish_error(exc, fatal=True)
                return
            except DeviceError as exc:  # a stall: keep trying, report it on timeouts
                self._publish_error(exc, fatal=False)
                continue
            except Exception as exc:  # anything else is a bug or a dead device: stop
                self._publish_error(DeviceError(f"{self.kind} camera reader failed: {exc}"),
                                    fatal=True, cause=exc)
                return
            with self._cond:
                self._latest = frame
                self._captured += 1
                self._last_error = None
                self._cond.notify_all()

    def _publish_error(self, exc: BaseException, fatal: bool,
                       cause: BaseException | None = None) -> None:
        if cause is not None:
            exc.__cause__ = cause
        with self._cond:
            if fatal:
                self._fatal = exc
            self._last_error = exc
            self._cond.notify_all()
