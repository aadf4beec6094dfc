"""Hand-eye calibration procedures: collect point correspondences, fit, save to the config.

A correspondence pairs one physical point in two frames: `p_base`, the tool tip from the
arm's forward kinematics of its ENCODER readings while the tip touches a mark on the table,
and `p_cam`, the same mark seen by the camera once the arm has moved away (its pixel and
the median depth around it, deprojected). `fit_hand_eye` solves T_base_cam with
`geometry.handeye.fit_rigid_transform` (least squares over every point, residuals reported).

- `collect_sim(...)`: the simulator plays the operator: it drives the arm through the real
  bus to clear table spots, reads the encoders, retracts, renders a frame and "clicks" the
  touched spot: the tip's true position projected with the simulator's true camera, plus
  optional pixel noise. Depth, deprojection and kinematics are the real code paths, so the
  fit is checked against the ground-truth extrinsics (rotation in degrees, translation in mm).
- `collect_interactive(...)`: real hardware: torque off, the operator touches a mark, moves
  the arm away and types the mark's pixel in a saved snapshot.
- Correspondence files (JSON, `{"points": [{"p_cam": [...], "p_base": [...]}, ...]}`) are
  written atomically and can be refitted later (`load_correspondences`).
Units: metres, radians, pixels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llara_edge.errors import ConfigError, DepthError, GeometryError
from llara_edge.geometry.camera import deproject_pixel_to_point
from llara_edge.geometry.handeye import RigidFit, fit_rigid_transform
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.hw_drivers.camera_base import Frame, depth_at
from llara_edge.robot.config import HandEye, RobotConfig
from llara_edge.robot.driver import Driver
from llara_edge.robot.toml_io import write_atomic

APPROACH_M = 0.05  # the tip comes down onto a mark from this height
TOUCH_SPEED = 0.6  # rad/s peak joint speed near the table
CLEARANCE_M = 0.06  # m (xy) a table spot keeps from an object's centre
CONTAINER_CLEARANCE_M = 0.10  # ... and from a container's centre (half side 55 mm + rim)


@dataclass(frozen=True)
class Correspondence:
    p_cam: tuple[float, float, float]  # camera frame, m
    p_base: tuple[float, float, float]  # base frame, m


def camera_point(frame: Frame, pixel: tuple[float, float], radius: int) -> np.ndarray:
    """Camera-frame point (3,) m seen at `pixel`: median depth around it, deprojected."""
    z = depth_at(frame, pixel[0], pixel[1], radius)
    return deproject_pixel_to_point(frame.intrinsics, pixel, z)


def fit_hand_eye(points: list[Correspondence]) -> RigidFit:
    """T_base_cam from correspondences (src = camera, dst = base)."""
    return fit_rigid_transform([p.p_cam for p in points], [p.p_base for p in points])


def with_hand_eye(cfg: RobotConfig, fit: RigidFit, source: str) -> RobotConfig:
    hand_eye = HandEye.from_matrix(fit.T, rms_residual_mm=round(fit.rms_m * 1000.0, 3),
                                   points=fit.n_points, source=source)
    return cfg.replace(hand_eye=hand_eye)


def save_correspondences(points: list[Correspondence], path: str | Path) -> Path:
    data = {"points": [{"p_cam": list(p.p_cam), "p_base": list(p.p_base)} for p in points]}
    return write_atomic(path, json.dumps(data, indent=1))


def load_correspondences(path: str | Path) -> list[Correspondence]:
    try:
        rows = json.loads(Path(path).read_text())["points"]
        return [Correspondence(tuple(map(float, r["p_cam"])), tuple(map(float, r["p_base"])))
                for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read correspondences from {path}: {exc}") from exc


# ----------------------------------------------------------------------------- simulator
def clearances(objects) -> list[tuple[np.ndarray, float]]:
    """(xy centre, keep-out radius m) of every object and container (oracle ObjectInfo)."""
    return [(np.asarray(o.position[:2], float),
             CONTAINER_CLEARANCE_M if o.is_container else CLEARANCE_M) for o in objects]


def table_spots(kin: ArmKinematics, n: int,
                keep_out: list[tuple[np.ndarray, float]]) -> list[np.ndarray]:
    """Up to n table points (z = 0) in front of the arm that the tool can touch pointing
    down, outside every keep-out circle (xy centre, radius m), spread out by greedy
    farthest-point selection over a polar grid."""
    candidates = []
    for r in np.arange(0.10, 0.27, 0.02):
        for az in np.arange(-1.0, 1.01, 0.125):
            p = np.array([r * math.cos(az), r * math.sin(az), 0.0])
            if all(np.linalg.norm(p[:2] - c) >= radius for c, radius in keep_out):
                candidates.append(p)
    chosen: list[np.ndarray] = []
    while candidates and len(chosen) < n:
        if chosen:
            gaps = [min(np.linalg.norm(p - c) for c in chosen) for p in candidates]
            best = int(np.argmax(gaps))
        else:
            best = int(np.argmin([abs(p[1]) + abs(p[0] - 0.18) for p in candidates]))
        p = candidates.pop(best)
        if kin.reachable_top_down(*p):
            chosen.append(p)
    return chosen


def _touch(driver: Driver, kin: ArmKinematics, spot: np.ndarray, speed: float,
           at_touch: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Bring the tip down onto `spot`, read the encoders (arm joints (n,)) and `at_touch()`,
    then retract home."""
    home = kin.home
    q_touch = kin.ik(spot, tool_down=True, q0=home)
    q_above = kin.ik(spot + np.array([0.0, 0.0, APPROACH_M]), tool_down=True, q0=q_touch)
    driver.move_to(q_above, False, speed)
    driver.move_to(q_touch, False, TOUCH_SPEED)
    driver.plant.settle(0.2)
    q, mark = driver.arm.read()[:len(home)], at_touch()
    driver.move_to(q_above, False, TOUCH_SPEED)
    driver.move_to(home, False, speed)
    driver.plant.settle(0.2)
    return q, mark


def collect_sim(robot, driver: Driver, n_points: int = 9, click_noise_px: float = 0.0,
                seed: int = 0, speed: float = 2.0) -> list[Correspondence]:
    """Correspondences in the simulator (see the module docstring); `robot` is a SimRobot
    whose episode is already reset."""
    from llara_edge.sim.camera import project_points

    rng = np.random.default_rng(seed)
    env, kin = robot.env, robot.kin
    radius = robot.cfg.camera.hole_radius
    points = []
    for spot in table_spots(kin, n_points, clearances(env.oracle_objects())):
        q, mark = _touch(driver, kin, spot, speed, lambda: env.world.tip)
        p_base = kin.fk(q)[:3, 3]  # what the encoders say
        frame = robot.camera.read()
        # the operator clicks the mark the cup touched (the true tip, seen by the true camera)
        pixel = project_points(env.intrinsics, env.T_base_cam, mark[None, :])[0]
        if click_noise_px:
            pixel = pixel + rng.normal(0.0, click_noise_px, 2)
        try:
            p_cam = camera_point(frame, (float(pixel[0]), float(pixel[1])), radius)
        except DepthError:
            continue  # the operator would pick another mark
        points.append(Correspondence(tuple(p_cam), tuple(p_base)))
    if len(points) < 3:
        raise GeometryError(f"only {len(points)} usable calibration points (need >= 3)")
    return points


# ----------------------------------------------------------------------------- hardware
def _ask_pixel(ask: Callable[[str], str], prompt: str) -> tuple[float, float]:
    while True:
        text = ask(prompt).replace(",", " ").split()
        try:
            u, v = (float(t) for t in text)
            return u, v
        except ValueError:
            prompt = "please type two numbers, u v: "


def collect_interactive(arm, camera, kin: ArmKinematics, n_points: int, hole_radius: int,
                        ask: Callable[[str], str], snapshot_dir: Path) -> list[Correspondence]:
    """Operator-guided correspondences on real hardware (torque off while touching)."""
    from PIL import Image

    n = len(kin.joints)
    arm.torque(False)
    points = []
    for i in range(1, n_points + 1):
        ask(f"[{i}/{n_points}] touch a mark on the table with the cup face, press Enter ")
        p_base = kin.fk(arm.read()[:n])[:3, 3]
        ask(f"[{i}/{n_points}] move the arm out of the camera's view, press Enter ")
        frame = camera.read()
        shot = Path(snapshot_dir) / f"mark_{i:02d}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame.color).save(shot)
        pixel = _ask_pixel(ask, f"[{i}/{n_points}] pixel of the mark in {shot} (u v): ")
        try:
            p_cam = camera_point(frame, pixel, hole_radius)
        except DepthError as exc:
            ask(f"no depth there ({exc}); this mark is skipped, press Enter ")
            continue
        points.append(Correspondence(tuple(p_cam), tuple(p_base)))
    return points
