"""`RealSenseCamera` (kind "realsense"): a D400 through `rs.pipeline`, live or played back.

Contract:
- Live: the device is picked by `config.serial` (or is the only one connected; otherwise a
  `DeviceError` lists the serials seen). Colour is streamed as RGB8 at width x height @ fps,
  depth as Z16 at the depth size; with `align_depth` an `rs.align(color)` block re-projects
  depth onto the colour grid, so `Frame.depth[v, u]` is the depth seen at colour pixel (u, v).
- Playback: `config.path` names a recording (rosbag2 .db3 as written by pyrealsense2 >= 2.56,
  or a ROS1 .bag from older SDKs); its streams are taken as recorded (any size), frames are
  delivered without drops unless `playback_real_time`, and the end of the file raises
  `EndOfStream` (or starts over with `loop`).
- `record_path` records every delivered stream through the pipeline's recorder.
- The depth scale (m per unit) is read from the depth sensor once at connect; intrinsics come
  from each frame's stream profile. A pipeline that delivers nothing within `timeout_s` gives
  a `DeviceError` (the background reader keeps retrying; a stalled USB camera recovers).
- `context`: an `rs.context` to enumerate devices in (the software device lives in its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llara_drivers.camera_base import Camera, CameraConfig, EndOfStream, Frame, register_camera
from llara_drivers.errors import DeviceError, DriverConfigError
from llara_drivers.realsense.rs_api import depth_scale_of, frameset_to_frame, pick_serial, rs_module


@register_camera("realsense")
class RealSenseCamera(Camera):
    """Colour + (aligned) depth from a RealSense device or recording."""

    def __init__(self, config: CameraConfig, context: Any = None):
        super().__init__(config)
        if config.path and not Path(config.path).is_file():
            raise DriverConfigError(f"RealSense recording {config.path!r} does not exist")
        self._context = context
        self._pipe: Any = None
        self._align: Any = None
        self._playback: Any = None
        self.serial = ""  # of the opened device (or the one that made the recording)
        self.depth_scale: float | None = None  # m per depth unit, set by connect()
        self.profile: Any = None  # rs.pipeline_profile of the running pipeline

    @property
    def source(self) -> str:
        return f"recording {self.config.path}" if self.config.path else \
            f"RealSense {self.serial or self.config.serial or '(any)'}"

    def _rs_config(self, rs: Any, ctx: Any) -> Any:
        cfg, c = rs.config(), self.config
        if c.path:
            cfg.enable_device_from_file(c.path, repeat_playback=c.loop)
            cfg.enable_stream(rs.stream.color)
            if c.depth:
                cfg.enable_stream(rs.stream.depth)
        else:
            self.serial = pick_serial(ctx, c.serial)
            cfg.enable_device(self.serial)
            cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
            if c.depth:
                dw, dh = c.depth_size
                cfg.enable_stream(rs.stream.depth, dw, dh, rs.format.z16, c.fps)
        if c.record_path:
            cfg.enable_record_to_file(c.record_path)
        return cfg

    def _open(self) -> None:
        rs = rs_module()
        ctx = self._context if self._context is not None else rs.context()
        cfg = self._rs_config(rs, ctx)
        pipe = rs.pipeline(ctx)
        try:
            if self.config.path:  # pace the player before it starts, or it drops first frames
                resolved = cfg.resolve(rs.pipeline_wrapper(pipe))
                resolved.get_device().as_playback().set_real_time(self.config.playback_real_time)
            self.profile = pipe.start(cfg)
        except RuntimeError as exc:
            raise DeviceError(f"cannot start {self.source}: {exc}") from exc
        self._pipe = pipe
        device = self.profile.get_device()
        self.serial = device.get_info(rs.camera_info.serial_number)
        if self.config.path:
            self._playback = device.as_playback()
            self._playback.set_real_time(self.config.playback_real_time)
        if self.config.depth:
            self.depth_scale = depth_scale_of(device)
            self._align = rs.align(rs.stream.color) if self.config.align_depth else None

    def _grab(self, timeout_s: float) -> Frame:
        rs = rs_module()
        ok, frames = self._pipe.try_wait_for_frames(max(1, int(timeout_s * 1000)))
        if not ok:
            if self._playback is not None and \
                    self._playback.current_status() == rs.playback_status.stopped:
                raise EndOfStream(f"end of RealSense recording {self.config.path}")
            raise DeviceError(f"{self.source}: no frames within {timeout_s:.2f} s")
        if self._align is not None:
            frames = self._align.process(frames)
        return frameset_to_frame(frames, self.depth_scale, self._align is not None)

    def _release(self) -> None:
        if self._pipe is not None:
            try:
                self._pipe.stop()
            except RuntimeError as exc:
                raise DeviceError(f"cannot stop {self.source}: {exc}") from exc
            finally:
                self._pipe, self._align, self._playback, self.profile = None, None, None, None
