"""Executing actions in the simulator the way the real robot executes them.

Pick-and-place (LLaRA): the two normalised image points of a `PickPlaceAction` are turned into
pixels of the frame the policy saw, each pixel into a base-frame point with that frame's depth
(perception.pixel_to_base: median of valid depth around it, DepthError without), and the motion
planner's joint plan is sampled every `SETPOINT_DT` s and tracked by the position servos in
physics; suction toggles a weld (suction.py). The pick point is where the cup touches the
object top; the place point is the surface the object is put on. A place point on the picked
object itself (same surface within `SAME_SURFACE_*`) means "put it back here", e.g. rotations
in place: the object is then set down at the height it rests at now, not on its own top.
Tool "spatula" sweeps instead: the cup, with contacts on, pushes from pick to place.

Joint step (LLARVA): absolute targets for the five arm joints (and optionally the jaw), reached
by linear setpoint interpolation over one control period; gripper < 0.5 = suction on.
"""

from __future__ import annotations

import numpy as np

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ConfigError
from llara_edge.geometry.motion import MotionConfig, interpolate, plan_pick_place, plan_sweep
from llara_edge.geometry.table import place_height, snap_to_table
from llara_edge.sim.perception import pixel_to_base
from llara_edge.sim.world import World

SETPOINT_DT = 0.02  # s between servo setpoints (50 Hz, a typical bus write rate)


def image_points(obs, action: PickPlaceAction, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(pick, place) base-frame points (3,) of an action in the observation it was made for."""
    intr = obs.intrinsics
    pick_px, place_px = action.pixels(intr.width, intr.height)
    pick = pixel_to_base(obs.depth, obs.depth_scale, intr, obs.T_base_cam, pick_px, window)
    place = pixel_to_base(obs.depth, obs.depth_scale, intr, obs.T_base_cam, place_px, window)
    return snap_to_table(pick), snap_to_table(place)


def _substeps(world: World) -> int:
    return max(1, round(SETPOINT_DT / world.cfg.timestep))


def execute_pick_place(world: World, obs, action: PickPlaceAction, motion: MotionConfig
                       ) -> dict:
    """Run one pick-and-place (or sweep) to completion, then let the scene settle."""
    pick, place = image_points(obs, action, world.cfg.depth_window_px)
    q5 = world.q[:5]
    if action.tool == "spatula":
        plan = plan_sweep(world.kin, q5, pick, place, motion)
    else:
        place = place_height(pick, place)
        plan = plan_pick_place(world.kin, q5, pick, place, action.rotation_deg, motion)
    traj = interpolate(plan, q5, SETPOINT_DT)
    world.cup_contacts(action.tool == "spatula")
    try:
        picked = world.drive(traj.q, traj.suction, _substeps(world))
    finally:
        world.cup_contacts(False)
    world.settle(world.cfg.settle_s)
    return {"pick_xyz": pick.round(4).tolist(), "place_xyz": place.round(4).tolist(),
            "picked": picked, "motion_s": float(traj.t[-1])}


def execute_joint_step(world: World, action: JointStepAction) -> dict:
    """Move to absolute joint targets over one control period; clip to the joint limits."""
    n = len(world.kin.joint_names)
    target = np.asarray(action.joints, float)
    if target.shape not in ((n,), (n + 1,)):
        raise ConfigError(f"joint step needs {n} or {n + 1} values, got {target.shape}")
    arm = np.clip(target[:n], world.kin.lower, world.kin.upper)
    if target.shape == (n + 1,):
        world.set_jaw(float(target[n]))
    start = world.q_target[:n]
    k = max(1, round(world.cfg.control_dt / SETPOINT_DT))
    alphas = np.arange(1, k + 1)[:, None] / k
    setpoints = start + alphas * (arm - start)
    suction = np.full(k, action.gripper < 0.5)
    sub = max(1, round(world.cfg.control_dt / k / world.cfg.timestep))
    picked = world.drive(setpoints, suction, sub)
    return {"clipped": bool(np.any(arm != target[:n])), "picked": picked}
