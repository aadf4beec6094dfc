"""pyrealsense2 glue shared by the live, playback and software RealSense paths.

- `rs_module()` imports pyrealsense2 on first use; a missing wheel (or the libusb-1.0 system
  library it needs) becomes a `DeviceError` that says what to install.
- Intrinsics: `rs.intrinsics` <-> `Intrinsics`. Models none / brown_conrady /
  inverse_brown_conrady map one to one; any other model is accepted only with all-zero
  coefficients (then it is a plain pinhole), otherwise `DeviceError`.
- `connected_serials(ctx)`, `pick_serial(ctx, wanted)`: serial-number selection; a missing
  serial is a `DeviceError` listing the serials that are connected.
- `depth_scale_of(device)`: metres per depth unit from the depth sensor's option.
- `frameset_to_frame(...)`: copies colour (RGB8, or BGR8/RGBA8/BGRA8 converted to RGB) and z16
  depth out of librealsense buffers (which librealsense recycles) into a `Frame`; depth in
  metres is units * depth_scale (float64 product, stored float32) with 0 units -> NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llara_drivers.camera_base import Frame, units_to_metres
from llara_drivers.camera_model import Intrinsics
from llara_drivers.errors import DeviceError

_MODEL_NAMES = ("none", "brown_conrady", "inverse_brown_conrady")


def rs_module() -> Any:
    """The pyrealsense2 module (imported lazily: it is an optional, x86-64-only wheel)."""
    try:
        import pyrealsense2 as rs
    except ImportError as exc:
        raise DeviceError(
            f"pyrealsense2 is not importable ({exc}). Install it with `pip install pyrealsense2` "
            "(x86-64; it needs the system library libusb-1.0, Debian package libusb-1.0-0) or "
            "build librealsense with BUILD_PYTHON_BINDINGS on ARM / Jetson") from exc
    return rs


def from_rs_intrinsics(ri: Any) -> Intrinsics:
    """`rs.intrinsics` -> `Intrinsics` (float32 fields widened to float)."""
    rs = rs_module()
    coeffs = tuple(float(c) for c in ri.coeffs)
    names = {rs.distortion.none: "none", rs.distortion.brown_conrady: "brown_conrady",
             rs.distortion.inverse_brown_conrady: "inverse_brown_conrady"}
    model = names.get(ri.model)
    if model is None:
        if any(coeffs):
            raise DeviceError(f"unsupported RealSense distortion model {ri.model} with "
                              f"coefficients {coeffs}")
        model = "none"
    return Intrinsics(int(ri.width), int(ri.height), float(ri.fx), float(ri.fy),
                      float(ri.ppx), float(ri.ppy), model, coeffs)


def to_rs_intrinsics(intr: Intrinsics) -> Any:
    """`Intrinsics` -> `rs.intrinsics` (stored as float32 by librealsense)."""
    rs = rs_module()
    ri = rs.intrinsics()
    ri.width, ri.height = intr.width, intr.height
    ri.fx, ri.fy, ri.ppx, ri.ppy = intr.fx, intr.fy, intr.ppx, intr.ppy
    ri.model = getattr(rs.distortion, intr.model)
    ri.coeffs = list(intr.coeffs)
    return ri


def connected_serials(ctx: Any) -> list[str]:
    """Serial numbers of the devices `ctx` sees now."""
    rs = rs_module()
    try:
        return [dev.get_info(rs.camera_info.serial_number) for dev in ctx.query_devices()]
    except RuntimeError as exc:
        raise DeviceError(f"cannot enumerate RealSense devices: {exc}") from exc


def pick_serial(ctx: Any, wanted: str) -> str:
    """The serial to open: `wanted` if connected, else the only device; else DeviceError."""
    serials = connected_serials(ctx)
    if wanted:
        if wanted not in serials:
            raise DeviceError(f"RealSense with serial {wanted!r} not found; connected: "
                              f"{', '.join(serials) if serials else 'none'}")
        return wanted
    if not serials:
        raise DeviceError("no RealSense device connected (check the USB 3 cable, the udev "
                          "rules from librealsense, and that no other process holds it)")
    if len(serials) > 1:
        raise DeviceError(f"{len(serials)} RealSense devices connected ({', '.join(serials)}); "
                          "set the camera serial to choose one")
    return serials[0]


def depth_scale_of(device: Any) -> float:
    """Metres per depth unit: the `depth_units` option of the device's depth sensor.

    Asked through the option rather than `first_depth_sensor()`, which a recording device
    (pipeline with `enable_record_to_file`) wrapping a software sensor does not answer."""
    rs = rs_module()
    for sensor in device.query_sensors():
        if sensor.supports(rs.option.depth_units):
            return float(sensor.get_option(rs.option.depth_units))
    raise DeviceError("the RealSense device has no sensor with a depth_units option")


def _rgb(frame: Any) -> np.ndarray:
    """Colour frame -> owned (H, W, 3) uint8 RGB array."""
    rs = rs_module()
    fmt = frame.get_profile().format()
    data = np.asanyarray(frame.get_data())
    if fmt == rs.format.rgb8:
        return data.copy()
    if fmt == rs.format.bgr8:
        return data[..., ::-1].copy()
    if fmt == rs.format.rgba8:
        return data[..., :3].copy()
    if fmt == rs.format.bgra8:
        return data[..., 2::-1].copy()
    raise DeviceError(f"unsupported RealSense colour format {fmt}; stream rgb8 or bgr8")


def frameset_to_frame(frames: Any, depth_scale: float | None, aligned: bool) -> Frame:
    """A (possibly aligned) frameset -> `Frame`; depth only when `depth_scale` is given."""
    color = frames.get_color_frame()
    if not color:
        raise DeviceError("RealSense frameset without a colour frame")
    intr = from_rs_intrinsics(color.get_profile().as_video_stream_profile().get_intrinsics())
    depth, depth_intr = None, None
    if depth_scale is not None:
        dframe = frames.get_depth_frame()
        if not dframe:
            raise DeviceError("RealSense frameset without a depth frame")
        depth = units_to_metres(np.asanyarray(dframe.get_data()), depth_scale)
        if not aligned:
            depth_intr = from_rs_intrinsics(
                dframe.get_profile().as_video_stream_profile().get_intrinsics())
    return Frame(_rgb(color), depth, intr, color.get_timestamp() / 1000.0,
                 int(color.get_frame_number()), depth_scale, depth_intr)
