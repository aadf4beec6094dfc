"""Hand-eye calibration procedures: collect point correspondences, fit, save to the config.

A correspondence pairs one physical point in two frames: `p_base`, the tool tip from the
arm's forward kinematics of its ENCODER readings while the tip touches a mark on the table,
and `p_cam`, the same mark seen by the camera once the arm has moved away (its pixel and
the median depth around it, deprojected). `fit_hand_eye` solves T_base_cam with
`geometry.handeye.fit_rigid_transform` (least squares over every point, residuals reported).

- The simulator plays the operator in `llara_edge.sim.calibration.collect_sim`.
- `collect_interactive(...)`: real hardware: torque off, the operator touches a mark, moves
  the arm away and types the mark's pixel in a saved snapshot.
- Correspondence files (JSON, `{"points": [{"p_cam": [...], "p_base": [...]}, ...]}`) are
  written atomically and can be refitted later (`load_correspondences`).
Units: metres, radians, pixels.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llara_edge.errors import ConfigError, DepthError
from llara_edge.geometry.camera import deproject_pixel_to_point
from llara_edge.geometry.handeye import RigidFit, fit_rigid_transform
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.hw_drivers.camera_base import Frame, depth_at
from llara_edge.robot.config import HandEye, RobotConfig
from llara_edge.robot.toml_io import write_atomic


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


def with_hand_eye(cfg: RobotConfig, fit: RigidFit, source: str,
                  simulated: bool = False) -> RobotConfig:
    hand_eye = HandEye.from_matrix(fit.T, rms_residual_mm=round(fit.rms_m * 1000.0, 3),
                                   points=fit.n_points, source=source, simulated=simulated)
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
