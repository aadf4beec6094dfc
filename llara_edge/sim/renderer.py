"""Offscreen RGB-D rendering of the front camera.

MuJoCo picks its GL backend from MUJOCO_GL when it is first imported; `llara_edge.sim` sets
it to "egl" when unset (headless, GPU or mesa). Any failure to create a GL context is turned
into a SimError that says which backend was tried and what to set instead.

Triton (imported by transformers' modelling code and the Triton projector) links its own LLVM;
importing it after Mesa's EGL has loaded another LLVM into the process segfaults, importing
it before is fine. So when triton is installed and EGL is the backend, it is imported before
the first GL context (once per process, ~1-2 s).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

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
        _load_triton_before_egl()
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


def _load_triton_before_egl() -> None:
    """Import triton (if installed) before EGL's LLVM arrives; see the module docstring."""
    if "triton" in sys.modules or os.environ.get("MUJOCO_GL", "egl") != "egl":
        return
    if importlib.util.find_spec("triton") is None:
        return
    try:
        importlib.import_module("triton")
    except Exception:  # a broken triton install is the torch paths' problem, not the sim's
        return
