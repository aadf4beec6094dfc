"""Can the camera see a candidate placement? Used by the layout sampler.

A set of base-frame points is "in view" when every point projects inside the image with a
border of `margin` (fraction of the image side) and no point is hidden behind the arm parked
at its home pose: a ray from the camera centre to the point must not hit an arm geom first.
The arm is probed in a scene without items (table + arm), compiled once per camera.
"""

from __future__ import annotations

import mujoco
import numpy as np

from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.sim.camera import base_from_camera, project_points
from llara_edge.sim.config import SimConfig
from llara_edge.sim.scene import build_scene, set_arm

_ARM_GROUPS = np.array([1, 1, 0, 0, 0, 0], dtype=np.uint8)  # table, arm links and cup


class ViewCheck:
    """Callable: points (N, 3) -> True if all are visible from the front camera."""

    def __init__(self, cfg: SimConfig, kin: ArmKinematics, margin: float = 0.03):
        self._intr = cfg.intrinsics
        self._T = base_from_camera(np.asarray(cfg.camera_position), np.asarray(cfg.camera_target))
        self._eye = np.asarray(cfg.camera_position, float)
        self._margin = margin
        self._model, index = build_scene(cfg, kin, ())
        self._data = mujoco.MjData(self._model)
        set_arm(self._model, self._data, index, np.r_[kin.home, 0.0])
        self._table = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_GEOM, "table")

    def _hidden(self, point: np.ndarray) -> bool:
        vec = point - self._eye
        dist = float(np.linalg.norm(vec))
        geom = np.array([-1], dtype=np.int32)
        hit = mujoco.mj_ray(self._model, self._data, self._eye, vec / dist, _ARM_GROUPS, 1, -1,
                            geom)
        return geom[0] >= 0 and geom[0] != self._table and hit < dist - 1e-3

    def __call__(self, points: np.ndarray) -> bool:
        px = project_points(self._intr, self._T, points)
        lo = self._margin * np.array([self._intr.width, self._intr.height])
        hi = np.array([self._intr.width, self._intr.height]) - lo
        if not np.all(np.isfinite(px)) or np.any(px < lo) or np.any(px > hi):
            return False
        return not any(self._hidden(p) for p in points)
