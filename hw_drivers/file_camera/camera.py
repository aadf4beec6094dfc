"""`FileCamera` (kind "file"): replays recorded frames as a camera.

Contract:
- `config.path` is an .npz, a directory of PNGs or a video (layouts in `file_camera.io`).
- Frames come out in file order, one per read, at the config's size: a file of another size
  is resampled (colour bilinear, depth nearest so no depth is invented between surfaces) and
  its intrinsics scaled. Without intrinsics in the file, a D435's nominal colour intrinsics
  (realsense/nominal.py) scaled to the frame size are assumed, and `intrinsics_source` says so
  (`llara-edge run` prints it among its first lines).
- `timestamp_s` is the file's timestamp, else frame index / fps. At the end: `EndOfStream`,
  or the first frame again with `loop`. No background reader: `async_read` is `read` (a file
  has no "latest" frame; replay is deterministic).
- `config.depth = False` drops depth; a file without depth gives frames with `depth=None`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

from llara_edge.errors import ConfigError
from llara_edge.geometry.camera import Intrinsics
from llara_edge.hw_drivers.camera_base import (
    Camera,
    CameraConfig,
    EndOfStream,
    Frame,
    register_camera,
)
from llara_edge.hw_drivers.file_camera.io import RawFrame, Recording, load_recording
from llara_edge.hw_drivers.realsense.nominal import D435_COLOUR


def _resample(color: np.ndarray, depth: np.ndarray | None, size: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize colour (bilinear) and depth (nearest) to size = (width, height)."""
    rgb = np.asarray(Image.fromarray(color).resize(size, Image.Resampling.BILINEAR))
    if depth is not None:
        depth = np.asarray(Image.fromarray(depth).resize(size, Image.Resampling.NEAREST))
    return rgb, depth


@register_camera("file")
class FileCamera(Camera):
    """Frames from a file, in order."""

    threaded_reader = False

    def __init__(self, config: CameraConfig):
        super().__init__(config)
        if not config.path:
            raise ConfigError("the file camera needs config.path (.npz, PNG directory or video)")
        self._recording: Recording | None = None
        self._frames: Iterator[RawFrame] | None = None
        self._index = 0
        self.intrinsics_source = ""  # "the recording" or the nominal fallback, once connected

    def _open(self) -> None:
        self._recording = load_recording(self.config.path, self.config.depth_scale)
        # said in the run's first lines: geometry from nominal intrinsics is only approximate
        self.intrinsics_source = ("the recording" if self._recording.intrinsics else
                                  "NOMINAL D435 colour intrinsics (the recording has none)")
        self._frames = self._recording.frames()
        self._index = 0

    def _next_raw(self) -> RawFrame:
        raw = next(self._frames, None)
        if raw is None and self.config.loop and self._index > 0:
            self._frames = self._recording.frames()
            raw = next(self._frames, None)
        if raw is None:
            raise EndOfStream(f"no more frames in {self.config.path} after {self._index}")
        return raw

    def _intrinsics(self, width: int, height: int) -> Intrinsics:
        intr = self._recording.intrinsics or D435_COLOUR.scaled(width, height)
        if (intr.width, intr.height) != (width, height):
            raise ConfigError(f"{self.config.path}: intrinsics are for {intr.width}x"
                              f"{intr.height}, frames are {width}x{height}")
        return intr

    def _grab(self, timeout_s: float) -> Frame:
        color, depth, stamp = self._next_raw()
        h, w = color.shape[:2]
        intr = self._intrinsics(w, h)
        if not self.config.depth:
            depth = None
        size = (self.config.width, self.config.height)
        if size != (w, h):
            color, depth = _resample(color, depth, size)
            intr = intr.scaled(*size)
        n = self._index
        self._index += 1
        time_s = stamp if stamp is not None else n / self.config.fps
        scale = self._recording.depth_scale if depth is not None else None
        return Frame(np.ascontiguousarray(color), depth, intr, time_s, n, scale)

    def _release(self) -> None:
        self._recording, self._frames = None, None
