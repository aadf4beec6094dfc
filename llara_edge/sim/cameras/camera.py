"""`SimCamera` (kind "sim"): the simulator's front RGB-D camera as a `Camera`.

Contract:
- Frames are rendered from the `TabletopEnv` given as `env=` (shared with whatever steps the
  physics, e.g. the virtual servo bus) or, without one, from an env the camera creates at the
  config's size and resets to (`sim_task`, `sim_level`, `sim_seed`), closing it on close().
- Each read renders the current simulation state: colour (H, W, 3) uint8, depth from the
  simulator's D400-style uint16 units (`DEPTH_SCALE` m; 0 = nothing in range -> NaN) on the
  colour grid, the env's intrinsics, `timestamp_s` = simulated time. Reads do not advance the
  simulation; two reads at the same simulated time give equal frames.
- Rendering uses the env's GL context and reads MjData that the caller's thread steps, so there
  is no background reader (`async_read` renders in the caller's thread like `read`).
- An env without an episode (reset() not called) gives a `DeviceError`.
"""

from __future__ import annotations

from llara_drivers.camera_base import Camera, CameraConfig, Frame, register_camera, units_to_metres
from llara_edge.errors import ConfigError, DeviceError, SimError
from llara_edge.sim import SimConfig, TabletopEnv
from llara_edge.sim.env import Observation


def observation_to_frame(obs: Observation, frame_number: int, with_depth: bool = True) -> Frame:
    """A simulator Observation -> Frame (copies; depth units -> metres, 0 -> NaN)."""
    depth = units_to_metres(obs.depth, obs.depth_scale) if with_depth else None
    return Frame(obs.rgb.copy(), depth, obs.intrinsics, float(obs.time), frame_number,
                 obs.depth_scale if with_depth else None)


@register_camera("sim")
class SimCamera(Camera):
    """Renders the simulator's front camera on demand."""

    threaded_reader = False

    def __init__(self, config: CameraConfig, env: TabletopEnv | None = None):
        super().__init__(config)
        self._env = env
        self._owns_env = env is None
        self._frames = 0

    @property
    def env(self) -> TabletopEnv:
        if self._env is None:
            raise DeviceError("sim camera is not connected; call connect() first")
        return self._env

    def _open(self) -> None:
        c = self.config
        if self._env is None:
            self._env = TabletopEnv(SimConfig(width=c.width, height=c.height))
            self._env.reset(c.sim_task, c.sim_level, c.sim_seed)
        size = (self._env.cfg.width, self._env.cfg.height)
        if size != (c.width, c.height):
            raise ConfigError(f"camera config asks for {c.width}x{c.height} but the simulator "
                              f"renders {size[0]}x{size[1]}")

    def observe(self) -> Observation:
        """The simulator's current observation (raw uint16 depth), as the env renders it."""
        try:
            return self.env.observe()
        except SimError as exc:
            raise DeviceError(f"sim camera: {exc}") from exc

    def _grab(self, timeout_s: float) -> Frame:
        obs = self.observe()
        self._frames += 1
        return observation_to_frame(obs, self._frames - 1, self.config.depth)

    def _release(self) -> None:
        if self._owns_env and self._env is not None:
            self._env.close()
            self._env = None

