"""The simulator's front RGB-D camera: a RealSense-like pinhole looking at the robot.

Frames: the robot base frame is the world frame (origin on the table at the arm base, x
forward, y left, z up, metres). The camera frame follows librealsense (x right, y down, z
forward); MuJoCo's camera looks along its -z with y up, i.e. MuJoCo camera = RealSense camera
rotated by diag(1, -1, -1). `T_base_cam` (4x4) maps RealSense-camera points to the base frame.

Depth is delivered as a D400 does: uint16 z-depth (distance along the optical axis, not
the ray length) in units of `DEPTH_SCALE` metres, 0 where there is no data (nothing within
range). Pixels follow librealsense: (0, 0) is the top-left corner of the top-left pixel, so
the pixel (u, v) covers [u, u+1) x [v, v+1) and its centre is (u + 0.5, v + 0.5).
"""

from __future__ import annotations

import math

import numpy as np

from llara_edge.geometry.camera import Intrinsics
from llara_edge.hw_drivers.realsense.nominal import DEPTH_SCALE

_MJ_FROM_RS = np.diag([1.0, -1.0, -1.0])  # RealSense axes expressed in MuJoCo camera axes


def fovy_deg(intr: Intrinsics) -> float:
    """MuJoCo's vertical field of view (degrees) for a centred pinhole with these intrinsics."""
    return math.degrees(2.0 * math.atan(0.5 * intr.height / intr.fy))


def look_at_rotation(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """3x3 rotation base <- MuJoCo camera (columns: camera x right, y up, z backward)."""
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("camera must not look straight up or down")
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward], axis=1)


def mujoco_xyaxes(position: np.ndarray, target: np.ndarray) -> tuple[float, ...]:
    """The `xyaxes` attribute of an MJCF camera at `position` looking at `target`."""
    rot = look_at_rotation(position, target)
    return tuple(float(v) for v in np.concatenate([rot[:, 0], rot[:, 1]]))


def base_from_camera(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 T_base_cam for the RealSense-convention camera frame."""
    T = np.eye(4)
    T[:3, :3] = look_at_rotation(position, target) @ _MJ_FROM_RS
    T[:3, 3] = position
    return T


def project_points(intr: Intrinsics, T_base_cam: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Base-frame points (N, 3) -> pixels (N, 2) as floats; points behind the camera -> NaN."""
    T_cam_base = np.linalg.inv(T_base_cam)
    cam = np.asarray(points, float) @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(z > 0, cam[:, 0] / z * intr.fx + intr.ppx, np.nan)
        v = np.where(z > 0, cam[:, 1] / z * intr.fy + intr.ppy, np.nan)
    return np.stack([u, v], axis=1)


def depth_to_units(depth_m: np.ndarray, min_m: float, max_m: float) -> np.ndarray:
    """Float z-depth in metres (H, W) -> uint16 RealSense depth; out of range -> 0."""
    units = np.rint(depth_m / DEPTH_SCALE)
    valid = (depth_m >= min_m) & (depth_m <= max_m)
    return np.where(valid, units, 0).astype(np.uint16)
