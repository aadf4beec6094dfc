"""`SoftwareRealSenseCamera` (kind "software-realsense"): simulator frames through pyrealsense2.

Each read renders the simulator (as `SimCamera`), pushes the colour image and the raw uint16
depth into a `SoftwareRealSense` device, and takes the frame back out of a `RealSenseCamera`
opened on that device by serial number: `rs.pipeline` + syncer, `rs.align(color)`, the depth
scale from the depth sensor, the intrinsics from the stream profiles, and (with
`record_path`) the pipeline's recorder. `read()` uses the RealSense camera's `read`,
`async_read()` its background reader; both return the frame made from this call's push.

The software device has the simulator's single pinhole for colour and depth and identity
depth -> colour extrinsics, as the simulator renders both from one camera. `timestamp_s` is
the device's virtual clock (frame n at n / fps s), which keeps increasing across episodes as
the pipeline's syncer requires; the simulated time of a frame is `sim.observe().time`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from llara_drivers.camera_base import Camera, CameraConfig, Frame, register_camera
from llara_drivers.realsense.camera import RealSenseCamera
from llara_drivers.realsense.software import SoftwareRealSense
from llara_edge.errors import DeviceError
from llara_edge.sim import TabletopEnv
from llara_edge.sim.camera import DEPTH_SCALE
from llara_edge.sim.cameras.camera import SimCamera

DEFAULT_SERIAL = "SW-D435-0001"


@register_camera("software-realsense")
class SoftwareRealSenseCamera(Camera):
    """The simulator's camera behind a software RealSense device and a real pipeline."""

    threaded_reader = False  # frames are rendered in the caller's thread; see async_read

    def __init__(self, config: CameraConfig, env: TabletopEnv | None = None):
        super().__init__(config)
        self.sim = SimCamera(dataclasses.replace(config, kind="sim"), env=env)
        self.device: SoftwareRealSense | None = None
        self.realsense: RealSenseCamera | None = None
        self._pushed = 0

    def _open(self) -> None:
        c = self.config
        self.sim.connect()
        try:
            self.device = SoftwareRealSense(self.sim.env.intrinsics, depth_scale=DEPTH_SCALE,
                                            fps=c.fps, serial=c.serial or DEFAULT_SERIAL)
            rs_config = dataclasses.replace(c, kind="realsense", serial=self.device.serial,
                                            path="")
            self.realsense = RealSenseCamera(rs_config, context=self.device.context).connect()
        except BaseException:
            self.sim.close()
            raise

    def _push(self) -> int:
        """Render the simulator and inject the frame; returns its frame number."""
        obs = self.sim.observe()
        if obs.depth_scale != self.device.depth_scale:
            raise DeviceError(f"simulator depth scale {obs.depth_scale} differs from the "
                              f"software device's {self.device.depth_scale}")
        n = self._pushed
        self._pushed += 1
        self.device.push(obs.rgb, obs.depth if self.config.depth else None,
                         n * 1000.0 / self.config.fps, n)
        return n

    def _take(self, take: Callable[[float], Frame], n: int, timeout_s: float) -> Frame:
        """The first frame numbered >= n (older ones left in the pipeline are skipped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = take(max(1e-3, deadline - time.monotonic()))
            if frame.frame_number >= n:
                return frame
            if time.monotonic() >= deadline:
                raise DeviceError(f"software RealSense: frame {n} did not come out of the "
                                  f"pipeline within {timeout_s:.2f} s")

    def _grab(self, timeout_s: float) -> Frame:
        return self._take(self.realsense.read, self._push(), timeout_s)

    def async_read(self, timeout_s: float | None = None) -> Frame:
        """Render + push, then take the frame from the RealSense camera's reader thread."""
        self._require_connected()
        return self._take(self.realsense.async_read, self._push(),
                          timeout_s or self.config.timeout_s)

    def _release(self) -> None:
        try:
            if self.realsense is not None:
                self.realsense.close()
        finally:
            self.realsense, self.device = None, None
            self.sim.close()
