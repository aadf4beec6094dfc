"""Hand-eye calibration: the least-squares rigid fit, and `llara-edge calibrate` in the
simulator checked against the simulator's ground-truth camera extrinsics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from llara_edge.cli.main import main
from llara_edge.errors import GeometryError
from llara_edge.geometry.handeye import (
    drop_worst,
    fit_rigid_transform,
    rotation_error_deg,
    transform_error,
)
from llara_edge.geometry.kinematics import axis_angle_matrix
from llara_edge.robot.calibration import Correspondence, load_correspondences, save_correspondences
from llara_edge.robot.config import RobotConfig


def random_transform(rng: np.random.Generator) -> np.ndarray:
    axis = rng.normal(size=3)
    T = np.eye(4)
    T[:3, :3] = axis_angle_matrix(axis / np.linalg.norm(axis), rng.uniform(-math.pi, math.pi))
    T[:3, 3] = rng.uniform(-1, 1, 3)
    return T


def apply(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ T[:3, :3].T + T[:3, 3]


def test_fit_recovers_exact_transforms():
    rng = np.random.default_rng(0)
    for _ in range(50):
        T = random_transform(rng)
        src = rng.uniform(-0.3, 0.3, (int(rng.integers(3, 20)), 3))
        fit = fit_rigid_transform(src, apply(T, src))
        np.testing.assert_allclose(fit.T, T, atol=1e-9)
        assert fit.max_m < 1e-9 and np.isclose(np.linalg.det(fit.T[:3, :3]), 1.0)


def test_fit_is_the_least_squares_optimum_under_noise():
    rng = np.random.default_rng(1)
    T = random_transform(rng)
    src = rng.uniform(-0.3, 0.3, (12, 3))
    dst = apply(T, src) + rng.normal(0, 0.002, (12, 3))
    fit = fit_rigid_transform(src, dst)
    best = float(np.sum(fit.residuals_m ** 2))
    for _ in range(200):  # no nearby rigid transform does better
        delta = np.eye(4)
        delta[:3, :3] = axis_angle_matrix(rng.normal(size=3) / 1.7, 1e-3)
        delta[:3, 3] = rng.normal(0, 5e-4, 3)
        other = delta @ fit.T
        assert np.sum(np.linalg.norm(apply(other, src) - dst, axis=1) ** 2) >= best - 1e-12
    rot, mm = transform_error(fit.T, T)
    assert rot < 1.0 and mm < 5.0


def test_coplanar_noisy_points_never_give_a_reflection():
    rng = np.random.default_rng(2)
    for _ in range(30):
        T = random_transform(rng)
        src = np.c_[rng.uniform(-0.2, 0.2, (6, 2)), np.zeros(6)]  # points on a table
        dst = apply(T, src) + rng.normal(0, 0.003, (6, 3))
        rot = fit_rigid_transform(src, dst).T[:3, :3]
        assert np.isclose(np.linalg.det(rot), 1.0)


def test_degenerate_correspondences_are_refused():
    with pytest.raises(GeometryError, match="at least 3"):
        fit_rigid_transform(np.zeros((2, 3)), np.zeros((2, 3)))
    line = np.outer(np.linspace(0, 1, 5), [1.0, 2.0, 3.0])
    with pytest.raises(GeometryError, match="collinear"):
        fit_rigid_transform(line, line)
    bad = np.eye(3)
    bad[0, 0] = np.nan
    with pytest.raises(GeometryError, match="non-finite"):
        fit_rigid_transform(bad, np.eye(3))


def test_drop_worst_removes_an_outlier():
    rng = np.random.default_rng(3)
    T = random_transform(rng)
    src = rng.uniform(-0.3, 0.3, (10, 3))
    dst = apply(T, src)
    dst[4] += [0.05, 0.0, 0.0]  # a mis-clicked point
    assert fit_rigid_transform(src, dst).max_m > 0.01
    fit, kept = drop_worst(src, dst, 1)
    assert 4 not in kept and fit.max_m < 1e-9


def test_rotation_error_of_a_known_angle():
    rot = axis_angle_matrix(np.array([0.0, 0.0, 1.0]), math.radians(7.0))
    assert rotation_error_deg(rot, np.eye(3)) == pytest.approx(7.0)
    assert rotation_error_deg(rot, rot) == pytest.approx(0.0, abs=1e-6)


def test_correspondence_files_round_trip(tmp_path):
    points = [Correspondence((0.1, 0.2, 0.3), (1.0, 2.0, 3.0))] * 3
    path = save_correspondences(points, tmp_path / "p.json")
    assert load_correspondences(path) == points


def test_calibrate_in_the_simulator_recovers_the_true_extrinsics(tmp_path, capsys):
    from llara_edge.sim.camera import base_from_camera
    from llara_edge.sim.config import SimConfig

    out = tmp_path / "robot.toml"
    rc = main(["calibrate", "--perturb", "--points", "8", "--out", str(out)])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and report["mode"] == "sim" and report["points"] >= 6
    # started 5 deg / 3 cm off; the fit lands on the simulator's camera pose
    assert report["before_rotation_error_deg"] == pytest.approx(5.0, abs=0.01)
    assert report["after_rotation_error_deg"] < 0.3
    assert report["after_translation_error_mm"] < 3.0
    assert report["rms_residual_mm"] < 2.5
    sim = SimConfig()
    truth = base_from_camera(np.array(sim.camera_position), np.array(sim.camera_target))
    saved = RobotConfig.load(out)
    rot, mm = transform_error(saved.hand_eye.matrix, truth)
    assert rot == pytest.approx(report["after_rotation_error_deg"], abs=1e-3)
    assert saved.hand_eye.points == report["points"] and "sim" in saved.hand_eye.source
    # refitting the saved correspondences in place gives the same transform
    points = Path(report["correspondences"])
    assert main(["calibrate", "--robot", str(out), "--from-file", str(points)]) == 0
    refit = RobotConfig.load(out)
    np.testing.assert_allclose(refit.hand_eye.matrix, saved.hand_eye.matrix, atol=1e-12)
    assert mm < 4.0


def test_interactive_procedure_with_a_simulated_operator(tmp_path):
    """The real-hardware procedure (torque off, touch, move away, type the pixel), with the
    simulator's arm moved by a scripted operator instead of a hand."""
    from llara_edge.robot.calibration import collect_interactive, fit_hand_eye
    from llara_edge.sim.calibration import clearances, table_spots
    from llara_edge.sim.camera import project_points
    from llara_edge.sim.robot import SimRobot
    from llara_edge.sim.scene import set_arm

    with SimRobot(RobotConfig.default()) as robot:
        robot.reset("visual_manipulation", "L1", 1)
        env, kin = robot.env, robot.kin
        spots = iter(table_spots(kin, 5, clearances(env.oracle_objects())))
        marks = []

        def put_arm(q5):
            world = env.world
            set_arm(world.model, world.data, world.index, np.r_[q5, 0.0])
            robot.bridge.advance(0.02)  # the encoders report where the hand left the arm

        def ask(prompt: str) -> str:
            if "touch a mark" in prompt:
                put_arm(kin.ik(next(spots), tool_down=True))
                marks.append(env.world.tip)
            elif "out of the camera" in prompt:
                put_arm(kin.home)
            elif "pixel" in prompt:
                u, v = project_points(env.intrinsics, env.T_base_cam, marks[-1][None, :])[0]
                return f"{u:.2f}, {v:.2f}"
            return ""

        points = collect_interactive(robot.arm, robot.camera, kin, 5, 2, ask, tmp_path)
        assert not any(robot.virtual.torque_enabled().values())  # the operator moves the arm
        fit = fit_hand_eye(points)
        rot, mm = transform_error(fit.T, robot.T_base_cam_truth)
    assert len(points) == 5 and len(list(tmp_path.glob("mark_*.png"))) == 5
    assert rot < 0.5 and mm < 4.0
