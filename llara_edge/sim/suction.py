"""Suction cup: welds the object under the cup face to the cup, releases it on command.

Attachment is physical, not scripted: a ray is cast along the tool axis from 2 cm behind the
cup face (tool site, z axis out of the cup), looking at object geoms only; if the first
object surface is within `reach_m` of the face (or the face has sunk into it), the weld
equality between the cup body and that object is activated with its relative pose set to
the current one (MuJoCo weld: relpose = pose of body2, the object, in body1, the cup).
Released objects fall under gravity from wherever the cup let go.
"""

from __future__ import annotations

import mujoco
import numpy as np

from llara_edge.sim.objects import OBJECT_GROUP
from llara_edge.sim.scene import SceneIndex

_BACKOFF = 0.02  # m behind the cup face where the ray starts
_GROUPS = np.array([int(g == OBJECT_GROUP) for g in range(6)], dtype=np.uint8)


class Suction:
    """Suction state of one cup in one simulation."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, index: SceneIndex,
                 reach_m: float):
        self._m, self._d, self._ix = model, data, index
        self._reach = reach_m
        self._by_body = {index.body[n]: n for n in index.weld}
        self.held: str | None = None

    def object_under_cup(self) -> tuple[str | None, float]:
        """(name of the first object along the tool axis, gap from the cup face in m)."""
        site = self._ix.arm.tool_site_id
        axis = self._d.site_xmat[site].reshape(3, 3)[:, 2].copy()
        start = self._d.site_xpos[site] - _BACKOFF * axis
        geom = np.array([-1], dtype=np.int32)
        dist = mujoco.mj_ray(self._m, self._d, start, axis, _GROUPS, 1, -1, geom)
        if geom[0] < 0 or dist < 0:
            return None, float("inf")
        name = self._by_body.get(int(self._m.geom_bodyid[geom[0]]))
        return name, float(dist - _BACKOFF)

    def update(self, on: bool) -> None:
        """Apply the commanded suction state: attach when on and an object is in reach,
        release when off."""
        if on and self.held is None:
            name, gap = self.object_under_cup()
            if name is not None and gap <= self._reach:
                self._attach(name)
        elif not on and self.held is not None:
            self._d.eq_active[self._ix.weld[self.held]] = 0
            self.held = None

    def _attach(self, name: str) -> None:
        cup, obj = self._ix.arm.cup_body_id, self._ix.body[name]
        rot_cup = self._d.xmat[cup].reshape(3, 3)
        eq = self._ix.weld[name]
        self._m.eq_data[eq, 0:3] = 0.0  # anchor at the object's origin
        self._m.eq_data[eq, 3:6] = rot_cup.T @ (self._d.xpos[obj] - self._d.xpos[cup])
        q_inv = np.zeros(4)
        mujoco.mju_negQuat(q_inv, self._d.xquat[cup])
        rel = np.zeros(4)
        mujoco.mju_mulQuat(rel, q_inv, self._d.xquat[obj])
        self._m.eq_data[eq, 6:10] = rel
        self._d.eq_active[eq] = 1
        self.held = name
