"""Front camera model of the simulator: intrinsics, frames, depth encoding, pixel -> 3D."""

import math

import numpy as np
import pytest

from llara_edge.errors import ConfigError, DepthError
from llara_edge.geometry.camera import deproject_pixel_to_point, project_point_to_pixel
from llara_edge.hw_drivers.realsense.nominal import D435_COLOUR, DEPTH_SCALE
from llara_edge.sim.camera import (
    base_from_camera,
    depth_to_units,
    fovy_deg,
    project_points,
)
from llara_edge.sim.config import SimConfig
from llara_edge.sim.perception import depth_at, pixel_to_base

POS, TGT = np.array([0.5, 0.0, 0.45]), np.array([0.125, 0.0, 0.0])


def test_d435_fovy_and_scaling():
    assert fovy_deg(D435_COLOUR) == pytest.approx(2 * math.degrees(math.atan(240 / 615)))
    small = SimConfig(width=160, height=120).intrinsics
    assert (small.fx, small.fy, small.ppx, small.ppy) == (153.75, 153.75, 80.0, 60.0)
    assert fovy_deg(small) == pytest.approx(fovy_deg(D435_COLOUR))


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError):
        SimConfig(width=320, height=200)  # not 4:3
    with pytest.raises(ConfigError):
        SimConfig(depth_window_px=4)
    with pytest.raises(ConfigError):
        SimConfig(camera_position=(0.5, 0.0, -0.1))


def test_T_base_cam_is_realsense_convention():
    T = base_from_camera(POS, TGT)
    R = T[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)
    forward = (TGT - POS) / np.linalg.norm(TGT - POS)
    assert np.allclose(R[:, 2], forward)  # z looks at the target
    assert np.allclose(R[:, 0], [0, 1, 0])  # facing the robot: image right = robot's left
    assert R[2, 1] < 0  # image y (down) points down in the world
    assert np.allclose(T[:3, 3], POS)


def test_projection_matches_librealsense_functions():
    T = base_from_camera(POS, TGT)
    intr = SimConfig(width=320, height=240).intrinsics
    pts = np.array([[0.2, 0.1, 0.0], [0.1, -0.2, 0.03], TGT])
    px = project_points(intr, T, pts)
    T_inv = np.linalg.inv(T)
    for p, uv in zip(pts, px, strict=True):
        cam = T_inv[:3, :3] @ p + T_inv[:3, 3]
        assert np.allclose(uv, project_point_to_pixel(intr, cam))
    assert np.allclose(px[2], [intr.ppx, intr.ppy])  # target on the optical axis


def test_depth_units_and_range():
    d = np.array([[0.05, 0.5], [1.234, 9.0]], dtype=np.float32)
    u = depth_to_units(d, 0.1, 1.5)
    assert u.dtype == np.uint16
    assert u.tolist() == [[0, 500], [1234, 0]]  # too near and too far -> 0 (no data)


def test_pixel_to_base_roundtrip_on_synthetic_plane():
    intr = SimConfig(width=160, height=120).intrinsics
    T = base_from_camera(POS, TGT)
    depth = np.full((120, 160), 600, np.uint16)  # fronto-parallel wall at 0.6 m
    p = pixel_to_base(depth, DEPTH_SCALE, intr, T, (40.5, 90.25))
    expect = T[:3, :3] @ deproject_pixel_to_point(intr, (40.5, 90.25), 0.6) + T[:3, 3]
    assert np.allclose(p, expect)


def test_depth_median_ignores_holes_and_raises_without_data():
    depth = np.full((30, 40), 500, np.uint16)
    depth[10, 10] = 0
    depth[11, 11] = 900  # one outlier
    assert depth_at(depth, DEPTH_SCALE, (10.5, 10.5)) == pytest.approx(0.5)
    depth[8:13, 8:13] = 0  # a hole as large as the window
    with pytest.raises(DepthError):
        depth_at(depth, DEPTH_SCALE, (10.5, 10.5), window=5)
    assert depth_at(depth, DEPTH_SCALE, (10.5, 10.5), window=7) == pytest.approx(0.5)
    with pytest.raises(DepthError):
        depth_at(depth, DEPTH_SCALE, (40.0, 3.0))  # outside the image
