"""Pinhole camera model with librealsense semantics.

Conventions follow librealsense (`rs2_intrinsics`, `rs2_deproject_pixel_to_point`,
`rs2_project_point_to_pixel`): camera frame x right, y down, z forward (metres); pixel
(u, v) with (0, 0) at the top-left corner of the top-left pixel; depth is the z coordinate,
not the ray length. Distortion models: "none", "brown_conrady" and "inverse_brown_conrady"
(forward model on projection, librealsense's 10-step iterative inverse on deprojection), which
cover D400 colour and depth streams. Checked against pyrealsense2 in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MODELS = ("none", "brown_conrady", "inverse_brown_conrady")


@dataclass(frozen=True)
class Intrinsics:
    """Intrinsics of one stream, as `rs2_intrinsics` (fx, fy, ppx, ppy in pixels)."""

    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str = "none"
    coeffs: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"invalid intrinsics {self!r}")
        if self.model not in _MODELS:
            raise ValueError(f"distortion model must be one of {_MODELS}, got {self.model!r}")
        if len(self.coeffs) != 5:
            raise ValueError("coeffs must hold 5 values (k1, k2, p1, p2, k3)")

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera resampled to width x height (as when a frame is resized)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx * sx, self.fy * sy, self.ppx * sx,
                          self.ppy * sy, self.model, self.coeffs)

    @classmethod
    def from_fov(cls, width: int, height: int, fovy_deg: float) -> Intrinsics:
        """Square-pixel pinhole with the principal point at the centre (MuJoCo cameras)."""
        f = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
        return cls(width, height, float(f), float(f), width / 2.0, height / 2.0)

    def matrix(self) -> np.ndarray:
        """3x3 camera matrix K."""
        return np.array([[self.fx, 0, self.ppx], [0, self.fy, self.ppy], [0, 0, 1]], float)


def deproject_pixel_to_point(intr: Intrinsics, pixel: tuple[float, float], depth: float
                             ) -> np.ndarray:
    """Pixel (u, v) and depth z (metres) -> 3D point (x, y, z) in the camera frame.

    Same arithmetic as `rs2_deproject_pixel_to_point`.
    """
    x = (pixel[0] - intr.ppx) / intr.fx
    y = (pixel[1] - intr.ppy) / intr.fy
    k1, k2, p1, p2, k3 = intr.coeffs
    if intr.model in ("brown_conrady", "inverse_brown_conrady"):
        xo, yo = x, y
        for _ in range(10):  # librealsense iterates the undistortion 10 times
            r2 = x * x + y * y
            icdist = 1.0 / (1.0 + ((k3 * r2 + k2) * r2 + k1) * r2)
            # inverse_brown_conrady evaluates the tangential terms at the distorted point
            xq, yq = (x / icdist, y / icdist) if intr.model == "inverse_brown_conrady" else (x, y)
            dx = 2 * p1 * xq * yq + p2 * (r2 + 2 * xq * xq)
            dy = 2 * p2 * xq * yq + p1 * (r2 + 2 * yq * yq)
            x = (xo - dx) * icdist
            y = (yo - dy) * icdist
    return np.array([depth * x, depth * y, depth], dtype=float)


def project_point_to_pixel(intr: Intrinsics, point: np.ndarray) -> tuple[float, float]:
    """3D point in the camera frame -> pixel (u, v), as `rs2_project_point_to_pixel`."""
    if point[2] <= 0:
        raise ValueError(f"point {point!r} is behind the camera")
    x, y = point[0] / point[2], point[1] / point[2]
    if intr.model != "none":
        k1, k2, p1, p2, k3 = intr.coeffs
        r2 = x * x + y * y
        f = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
        # librealsense evaluates the tangential terms at the undistorted point for
        # brown_conrady and at the radially scaled point for inverse_brown_conrady
        tx, ty = (x, y) if intr.model == "brown_conrady" else (x * f, y * f)
        x, y = (x * f + 2 * p1 * tx * ty + p2 * (r2 + 2 * tx * tx),
                y * f + 2 * p2 * tx * ty + p1 * (r2 + 2 * ty * ty))
    return (float(x * intr.fx + intr.ppx), float(y * intr.fy + intr.ppy))


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 homogeneous transform to (..., 3) points."""
    pts = np.asarray(points, dtype=float)
    return pts @ T[:3, :3].T + T[:3, 3]
