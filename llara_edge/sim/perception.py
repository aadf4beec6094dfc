"""Image point + depth -> 3D point in the robot base frame (the same code serves a RealSense).

depth is a (H, W) uint16 image in units of `depth_scale` metres, 0 = no data. The depth at
a pixel is the median of the valid values in a small square window around it, so a single
hole or an edge pixel does not throw the point off; a window without valid depth raises
DepthError (never returns a zero-depth point). Table-surface rules: geometry/table.py.
"""

from __future__ import annotations

import math

import numpy as np

from llara_edge.errors import DepthError
from llara_edge.geometry.camera import Intrinsics, deproject_pixel_to_point


def depth_at(depth: np.ndarray, depth_scale: float, pixel: tuple[float, float],
             window: int = 5) -> float:
    """Median valid depth (m) in a window x window square centred on pixel (u, v)."""
    h, w = depth.shape
    u, v = math.floor(pixel[0]), math.floor(pixel[1])
    if not (0 <= u < w and 0 <= v < h):
        raise DepthError(f"pixel ({pixel[0]:.1f}, {pixel[1]:.1f}) is outside the {w}x{h} image")
    r = window // 2
    patch = depth[max(0, v - r):v + r + 1, max(0, u - r):u + r + 1]
    valid = patch[patch > 0]
    if valid.size == 0:
        raise DepthError(f"no valid depth within {window}x{window} px of pixel "
                         f"({pixel[0]:.1f}, {pixel[1]:.1f})")
    return float(np.median(valid)) * depth_scale


def pixel_to_base(depth: np.ndarray, depth_scale: float, intr: Intrinsics,
                  T_base_cam: np.ndarray, pixel: tuple[float, float], window: int = 5
                  ) -> np.ndarray:
    """Base-frame point (3,) seen at pixel (u, v): depth lookup, deprojection, hand-eye."""
    if depth.shape != (intr.height, intr.width):
        raise DepthError(f"depth image {depth.shape} does not match the intrinsics "
                         f"{intr.width}x{intr.height}")
    z = depth_at(depth, depth_scale, pixel, window)
    p_cam = deproject_pixel_to_point(intr, pixel, z)
    return T_base_cam[:3, :3] @ p_cam + T_base_cam[:3, 3]
