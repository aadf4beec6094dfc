"""Hand-eye calibration in the simulator: the simulator plays the operator.

`collect_sim(robot, driver, ...)` drives the arm through the real bus to clear table spots,
reads the encoders, retracts, renders a frame and "clicks" the touched spot: the tip's true
position projected with the simulator's true camera, plus optional pixel noise. Depth,
deprojection and kinematics are the real code paths (llara_edge.robot.calibration), so the fit
is checked against the ground-truth extrinsics (rotation in degrees, translation in mm).
Units: metres, radians, pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from llara_edge.errors import DepthError, GeometryError
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.robot.calibration import Correspondence, camera_point
from llara_edge.robot.driver import Driver
from llara_edge.sim.camera import project_points

APPROACH_M = 0.05  # the tip comes down onto a mark from this height
TOUCH_SPEED = 0.6  # rad/s peak joint speed near the table
CLEARANCE_M = 0.06  # m (xy) a table spot keeps from an object's centre
CONTAINER_CLEARANCE_M = 0.10  # ... and from a container's centre (half side 55 mm + rim)


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
