"""Success and failure checks per task family, from the simulator state.

A check looks at a `WorldState` snapshot (poses of every item, held object, tool tip) and
the episode's start poses; it returns (success, failure_reason or None). Failure means the
episode cannot succeed any more (e.g. a wrong object was put into the container, an object
fell off the table); it ends the episode. Units: metres, radians; rotations asked for are
clockwise seen from above (LLaRA), i.e. a yaw change of -deg about the base z axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llara_edge.sim.catalog import CONTAINERS, OBJECT_HEIGHT
from llara_edge.sim.objects import SceneItem
from llara_edge.sim.tasks import TaskInstance

INSIDE_MARGIN = 0.004  # m: the object centre must be this far inside the inner wall
REST_SPEED = 0.03  # m/s: slower than this counts as resting
ROTATE_TOL_DEG = 12.0
ROTATE_MAX_SHIFT = 0.03  # m the rotated object may move
REACH_XY = 0.02  # m: tip within this horizontal distance of the object's top centre
REACH_DZ = (-0.005, 0.03)  # m: tip height above the object top
FALLEN_Z = -0.05  # m: below the table top = fell off


@dataclass
class Pose:
    """Pose of one object: centre (3,), yaw (rad), z axis up-component, speed (m/s)."""

    position: np.ndarray
    yaw: float
    upright: float
    speed: float
    top_z: float


@dataclass
class WorldState:
    """What the checks need: object poses now and at reset, the held object, the tool tip."""

    poses: dict[str, Pose]
    start: dict[str, Pose]
    held: str | None
    tip: np.ndarray


def inside(container: SceneItem, pose: Pose) -> bool:
    """Object centre inside the container's inner square, low (resting on the floor or on
    another object in it), not hovering."""
    kind = CONTAINERS[container.kind]
    c, s = math.cos(container.yaw), math.sin(container.yaw)
    dx, dy = pose.position[0] - container.x, pose.position[1] - container.y
    lx, ly = c * dx + s * dy, -s * dx + c * dy
    inner = kind.half - kind.rim_width - INSIDE_MARGIN
    return abs(lx) <= inner and abs(ly) <= inner and \
        pose.position[2] <= kind.floor + 1.6 * OBJECT_HEIGHT


def _resting(state: WorldState, name: str) -> bool:
    p = state.poses[name]
    return state.held != name and p.speed < REST_SPEED


def _common_failure(task: TaskInstance, state: WorldState) -> str | None:
    for name, p in state.poses.items():
        if p.position[2] < FALLEN_Z:
            return f"{name} fell off the table"
    if task.container is not None:
        box = task.item(task.container)
        for name, p in state.poses.items():
            if name not in task.targets and inside(box, p) and not inside(box, state.start[name]):
                return f"{name} was put into the {task.container}"
    return None


def _into_container(task: TaskInstance, state: WorldState) -> bool:
    box = task.item(task.container)
    return all(inside(box, state.poses[n]) and _resting(state, n) for n in task.targets)


def _rotated(task: TaskInstance, state: WorldState) -> bool:
    name = task.targets[0]
    now, start = state.poses[name], state.start[name]
    turned = math.degrees(now.yaw - start.yaw)
    err = (turned + task.rotation_deg + 180.0) % 360.0 - 180.0  # clockwise = negative yaw
    shift = float(np.linalg.norm(now.position[:2] - start.position[:2]))
    return abs(err) <= ROTATE_TOL_DEG and shift <= ROTATE_MAX_SHIFT and now.upright > 0.94 \
        and _resting(state, name)


def _reached(task: TaskInstance, state: WorldState) -> bool:
    p = state.poses[task.targets[0]]
    dxy = float(np.linalg.norm(state.tip[:2] - p.position[:2]))
    dz = float(state.tip[2] - p.top_z)
    return dxy <= REACH_XY and REACH_DZ[0] <= dz <= REACH_DZ[1]


SUCCESS_CHECKS: dict[str, Callable[[TaskInstance, WorldState], bool]] = {
    "visual_manipulation": _into_container,
    "rotate": _rotated,
    "scene_understanding": _into_container,
    "reach": _reached,
}


def evaluate(task: TaskInstance, state: WorldState) -> tuple[bool, str | None]:
    """(success, failure reason or None) of a task in a world state."""
    failure = _common_failure(task, state)
    if failure is not None:
        return False, failure
    return SUCCESS_CHECKS[task.family](task, state), None
