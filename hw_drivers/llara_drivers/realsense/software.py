"""`SoftwareRealSense`: a D400-like `rs.software_device` fed from Python, seen by real pipelines.

The device has a depth sensor ("Stereo Module": one Z16 stream, read-only `depth_units`
option) and a colour sensor ("RGB Camera": one RGB8 stream), each stream with its intrinsics,
and the depth -> colour extrinsics registered, so `rs.align`, the depth scale query and the
recorder see what they see on a real camera. It is added to its own `rs.context`
(`self.context`) under `serial`; `RealSenseCamera(config, context=dev.context)` then opens it
with the same code as a USB camera.

`push(color, depth_units, timestamp_ms, frame_number)` injects one colour frame and one depth
frame with the same timestamp and frame number (hardware clock domain). The binding copies
the pixels into a buffer librealsense frees itself, so callers may reuse their arrays; every
push uses fresh `software_video_frame` objects (reusing one frees its buffer twice).
Timestamps must increase from push to push or the pipeline's syncer drops frames.

librealsense >= 2.56 (the PyPI wheel 2.59.1 included) keeps devices added with
`software_device.add_to(ctx)` only through a weak reference to a device-info object that
nothing else holds, so the device vanishes from `ctx.query_devices()` at once. The info object
is also handed to the context's devices-changed callback; keeping the device list received
there (`self._keep`) keeps the device visible. `_attach` checks that it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llara_drivers.camera_model import Intrinsics
from llara_drivers.errors import DeviceError, DriverConfigError
from llara_drivers.realsense.rs_api import connected_serials, rs_module, to_rs_intrinsics


class SoftwareRealSense:
    """A software colour + depth camera (one stream each) on its own context."""

    def __init__(self, color: Intrinsics, depth: Intrinsics | None = None,
                 depth_to_color: np.ndarray | None = None, depth_scale: float = 0.001,
                 fps: int = 30, serial: str = "SW-D435-0001"):
        rs = rs_module()
        self.color_intrinsics = color
        self.depth_intrinsics = depth or color
        self.depth_scale = float(depth_scale)
        self.serial = serial
        extr = np.eye(4) if depth_to_color is None else np.asarray(depth_to_color, float)
        if extr.shape != (4, 4):
            raise DriverConfigError(f"depth_to_color must be a 4x4 transform, got {extr.shape}")
        self.device = rs.software_device()
        for info, value in ((rs.camera_info.serial_number, serial),
                            (rs.camera_info.name, "llara-edge software D435"),
                            (rs.camera_info.product_line, "D400")):
            self.device.register_info(info, value)
        self._depth_sensor = self.device.add_sensor("Stereo Module")
        self._depth_sensor.add_read_only_option(rs.option.depth_units, self.depth_scale)
        self._color_sensor = self.device.add_sensor("RGB Camera")
        self._depth_profile = self._add_stream(self._depth_sensor, rs.stream.depth, rs.format.z16,
                                               2, self.depth_intrinsics, fps, uid=0)
        self._color_profile = self._add_stream(self._color_sensor, rs.stream.color,
                                               rs.format.rgb8, 3, color, fps, uid=1)
        ext = rs.extrinsics()
        ext.rotation = [float(v) for v in extr[:3, :3].T.ravel()]  # librealsense: column-major
        ext.translation = [float(v) for v in extr[:3, 3]]
        self._depth_profile.register_extrinsics_to(self._color_profile, ext)
        self._keep: list[Any] = []
        self.context = rs.context()
        self._attach()

    @staticmethod
    def _add_stream(sensor: Any, stream: Any, fmt: Any, bpp: int, intr: Intrinsics, fps: int,
                    uid: int) -> Any:
        rs = rs_module()
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = stream, 0, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = intr.width, intr.height, fps, bpp, fmt
        vs.intrinsics = to_rs_intrinsics(intr)
        return sensor.add_video_stream(vs, True)

    def _attach(self) -> None:
        self.context.set_devices_changed_callback(
            lambda event: self._keep.append(event.get_new_devices()))
        self.device.add_to(self.context)
        if self.serial not in connected_serials(self.context):
            raise DeviceError(f"software device {self.serial} was added to its context but does "
                              "not show in query_devices(); this pyrealsense2 build handles "
                              "software devices differently")

    def push(self, color: np.ndarray, depth_units: np.ndarray | None, timestamp_ms: float,
             frame_number: int) -> None:
        """Inject colour (H, W, 3) uint8 RGB and depth (Hd, Wd) uint16 units (or no depth)."""
        rs = rs_module()
        ci, di = self.color_intrinsics, self.depth_intrinsics
        if color.shape != (ci.height, ci.width, 3) or color.dtype != np.uint8:
            raise DriverConfigError(f"colour must be ({ci.height}, {ci.width}, 3) uint8, got "
                              f"{color.shape} {color.dtype}")
        if depth_units is not None and (depth_units.shape != (di.height, di.width)
                                        or depth_units.dtype != np.uint16):
            raise DriverConfigError(f"depth must be ({di.height}, {di.width}) uint16, got "
                              f"{depth_units.shape} {depth_units.dtype}")
        streams = [(self._color_sensor, self._color_profile, color, 3)]
        if depth_units is not None:
            streams.insert(0, (self._depth_sensor, self._depth_profile, depth_units, 2))
        for sensor, profile, pixels, bpp in streams:
            frame = rs.software_video_frame()
            frame.pixels = np.ascontiguousarray(pixels)  # the binding memcpy's a dense buffer
            frame.bpp, frame.stride = bpp, pixels.shape[1] * bpp
            frame.timestamp, frame.frame_number = float(timestamp_ms), int(frame_number)
            frame.domain = rs.timestamp_domain.hardware_clock
            frame.depth_units = self.depth_scale
            frame.profile = profile.as_video_stream_profile()
            sensor.on_video_frame(frame)
