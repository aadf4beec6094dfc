"""Offscreen RGB-D rendering of the front camera.

MuJoCo picks its GL backend from MUJOCO_GL when it is first imported; `llara_edge.sim` sets
it to "egl" when unset (headless, GPU or mesa). Any failure to create a GL context is turned
into a SimError that says which backend was tried and what to set instead.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np

from llara_edge.errors import SimError
from llara_edge.sim.camera import depth_to_units
from llara_edge.sim.config import SimConfig


class CameraRenderer:
    """Renders colour (H, W, 3) uint8 and RealSense-style depth (H, W) uint16 of one camera."""

    def __init__(self, model: mujoco.MjModel, cfg: SimConfig, camera: str):
        self._cfg = cfg
        self._camera = camera
        try:
            self._renderer = mujoco.Renderer(model, height=cfg.height, width=cfg.width)
        except Exception as err:  # GL backends fail with many error types (ImportError, OSError...)
            backend = os.environ.get("MUJOCO_GL", "<unset>")
            raise SimError(
                f"no working OpenGL backend for offscreen rendering (MUJOCO_GL={backend}): "
                f"{err}. Install EGL (libegl1) or OSMesa (libosmesa6) and set MUJOCO_GL=egl "
                "or MUJOCO_GL=osmesa before importing llara_edge.sim") from err

    def render(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """(rgb uint8 (H, W, 3), depth uint16 (H, W) in DEPTH_SCALE units, 0 = no data)."""
        r = self._renderer
        r.disable_depth_rendering()
        r.update_scene(data, camera=self._camera)
        rgb = r.render().copy()
        r.enable_depth_rendering()
        r.update_scene(data, camera=self._camera)
        depth_m = r.render()  # float32 metres, z along the optical axis
        r.disable_depth_rendering()
        return rgb, depth_to_units(depth_m, self._cfg.depth_min_m, self._cfg.depth_max_m)

    def close(self) -> None:
        self._renderer.close()
