"""Oracle object information from the simulator state (for D-inBC prompts and the expert).

For every object and container: its name, its bounding box in NORMALISED image coordinates
(cx, cy, w, h; x right, y down, origin top-left) of the front camera, computed by projecting
the corners / vertices of the body's geoms and clipping to the image, and the image point
of its top centre (the centre of the top face for objects, the floor centre for containers),
where the suction cup picks and the expert places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from llara_drivers.camera_model import Intrinsics
from llara_edge.sim.camera import project_points
from llara_edge.sim.catalog import CONTAINERS

_CIRCLE = np.linspace(0, 2 * np.pi, 16, endpoint=False)


@dataclass(frozen=True)
class ObjectInfo:
    """One object or container as the oracle sees it in the current frame."""

    name: str
    is_container: bool
    bbox: tuple[float, float, float, float]  # normalised (cx, cy, w, h), clipped to the image
    top_center: tuple[float, float]  # normalised image point of the top centre
    top_center_px: tuple[float, float]  # the same in pixels (u, v)
    position: tuple[float, float, float]  # top centre in the base frame, m
    yaw_deg: float  # counter-clockwise seen from above


def geom_local_points(model: mujoco.MjModel, gid: int) -> np.ndarray:
    """Points (N, 3) in the geom frame whose convex hull is the geom (boxes, cylinders, meshes)."""
    size = model.geom_size[gid]
    gtype = model.geom_type[gid]
    if gtype == mujoco.mjtGeom.mjGEOM_BOX:
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return signs * size
    if gtype == mujoco.mjtGeom.mjGEOM_CYLINDER:
        ring = np.stack([size[0] * np.cos(_CIRCLE), size[0] * np.sin(_CIRCLE)], axis=1)
        return np.concatenate([np.c_[ring, np.full(16, z)] for z in (-size[1], size[1])])
    if gtype == mujoco.mjtGeom.mjGEOM_MESH:
        mid = model.geom_dataid[gid]
        start, num = model.mesh_vertadr[mid], model.mesh_vertnum[mid]
        return np.asarray(model.mesh_vert[start:start + num], dtype=float)
    raise ValueError(f"geom {gid} has a type the oracle does not handle: {gtype}")


def body_points(model: mujoco.MjModel, data: mujoco.MjData, body: int) -> np.ndarray:
    """World points (N, 3) spanning every geom of a body."""
    pts = []
    for gid in range(model.body_geomadr[body], model.body_geomadr[body] + model.body_geomnum[body]):
        local = geom_local_points(model, gid)
        pts.append(local @ data.geom_xmat[gid].reshape(3, 3).T + data.geom_xpos[gid])
    return np.concatenate(pts)


def body_yaw(data: mujoco.MjData, body: int) -> float:
    """Yaw (rad, counter-clockwise from above) of a body's x axis."""
    rot = data.xmat[body].reshape(3, 3)
    return math.atan2(rot[1, 0], rot[0, 0])


def top_center(model: mujoco.MjModel, data: mujoco.MjData, body: int, kind: str) -> np.ndarray:
    """Base-frame point (3,) at the centre of the top face (object) or of the floor (container)."""
    pos = data.xpos[body].copy()
    if kind in CONTAINERS:
        pos[2] += CONTAINERS[kind].floor
    else:
        pos[2] = body_points(model, data, body)[:, 2].max()
    return pos


def object_info(model: mujoco.MjModel, data: mujoco.MjData, body: int, name: str, kind: str,
                intr: Intrinsics, T_base_cam: np.ndarray) -> ObjectInfo:
    """Oracle info of one body in the current frame."""
    px = project_points(intr, T_base_cam, body_points(model, data, body))
    lo = np.clip(np.nanmin(px, axis=0), 0, [intr.width, intr.height])
    hi = np.clip(np.nanmax(px, axis=0), 0, [intr.width, intr.height])
    size = np.array([intr.width, intr.height], float)
    c, wh = (lo + hi) / 2 / size, (hi - lo) / size
    top = top_center(model, data, body, kind)
    tc = project_points(intr, T_base_cam, top[None])[0]
    return ObjectInfo(name, kind in CONTAINERS, (float(c[0]), float(c[1]), float(wh[0]),
                                                 float(wh[1])),
                      (float(tc[0] / size[0]), float(tc[1] / size[1])),
                      (float(tc[0]), float(tc[1])), tuple(float(v) for v in top),
                      math.degrees(body_yaw(data, body)))
