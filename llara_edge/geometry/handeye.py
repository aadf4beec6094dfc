"""Hand-eye calibration from point correspondences: a rigid transform by least squares.

Given N >= 3 non-collinear points measured in two frames (e.g. the camera frame, from a
pixel and its depth, and the robot base frame, from the arm's forward kinematics while its
tool tip touches the same point), `fit_rigid_transform(src, dst)` returns the rotation R and
translation t minimising sum |R src_i + t - dst_i|^2 (Kabsch / Umeyama without scale: SVD
of the cross-covariance, with the sign correction that keeps det R = +1), and the residual
of every point. Every point is used (no RANSAC); `fit.residuals_m` exposes outliers, and
`drop_worst` refits without the worst points when asked.

Units: metres; a transform is a (4, 4) homogeneous matrix mapping src-frame points to the
dst frame (for hand-eye: T_base_cam, src = camera, dst = base).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llara_edge.errors import GeometryError


@dataclass(frozen=True)
class RigidFit:
    """Result of a fit: T (4, 4) dst <- src and the per-point residuals (N,) in metres."""

    T: np.ndarray
    residuals_m: np.ndarray

    @property
    def rms_m(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_m ** 2)))

    @property
    def max_m(self) -> float:
        return float(np.max(self.residuals_m))

    @property
    def n_points(self) -> int:
        return int(self.residuals_m.size)


def _check(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    if src.ndim != 2 or src.shape[1] != 3 or src.shape != dst.shape:
        raise GeometryError(f"need two (N, 3) point sets of equal size, got {src.shape} and "
                            f"{dst.shape}")
    if len(src) < 3:
        raise GeometryError(f"a rigid transform needs at least 3 points, got {len(src)}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise GeometryError("correspondences contain non-finite values")
    return src, dst


def fit_rigid_transform(src, dst) -> RigidFit:
    """Least-squares R, t with dst ~ R src + t (see the module docstring)."""
    src, dst = _check(src, dst)
    c_src, c_dst = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - c_src, dst - c_dst
    # The second singular value of the centred set is 0 iff the points are collinear.
    spread = np.linalg.svd(a, compute_uv=False)
    if spread[1] < 1e-6 * max(spread[0], 1e-12) or spread[0] < 1e-9:
        raise GeometryError("correspondences are (nearly) collinear: the rotation about "
                            "their line is undetermined")
    u, _, vt = np.linalg.svd(a.T @ b)  # cross-covariance H = sum a_i b_i^T (3, 3)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    t = c_dst - rot @ c_src
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rot, t
    residuals = np.linalg.norm(src @ rot.T + t - dst, axis=1)
    return RigidFit(T, residuals)


def drop_worst(src, dst, n_drop: int) -> tuple[RigidFit, np.ndarray]:
    """Refit after removing the `n_drop` points with the largest residuals, one at a time.
    Returns the fit and the indices (into the input) of the points kept."""
    src, dst = _check(src, dst)
    keep = np.arange(len(src))
    for _ in range(n_drop):
        if len(keep) <= 3:
            break
        fit = fit_rigid_transform(src[keep], dst[keep])
        keep = np.delete(keep, int(np.argmax(fit.residuals_m)))
    return fit_rigid_transform(src[keep], dst[keep]), keep


def rotation_error_deg(rot_a: np.ndarray, rot_b: np.ndarray) -> float:
    """Angle (degrees) of the rotation taking rot_b to rot_a (both (3, 3))."""
    rel = np.asarray(rot_a)[:3, :3] @ np.asarray(rot_b)[:3, :3].T
    cos = (np.trace(rel) - 1.0) / 2.0
    return math.degrees(math.acos(float(np.clip(cos, -1.0, 1.0))))


def transform_error(T_est: np.ndarray, T_true: np.ndarray) -> tuple[float, float]:
    """(rotation error in degrees, translation error in mm) between two (4, 4) transforms."""
    rot = rotation_error_deg(T_est[:3, :3], T_true[:3, :3])
    return rot, float(np.linalg.norm(T_est[:3, 3] - T_true[:3, 3]) * 1000.0)
