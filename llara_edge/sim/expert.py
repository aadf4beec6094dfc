"""Scripted expert: solves every task from the oracle (simulator state).

Pick-and-place families get `PickPlaceAction`s in normalised image coordinates rounded to 3
decimals (what LLaRA's text format can carry), which the env executes through the same
image-point primitive a policy's answer goes through: pick at the centre of the object's image
box, place at the centre of the container's image box (scene_understanding spreads its objects
over the container's four quadrants), rotate by the asked clockwise angle (rotate places the
object back where it was). Box centres, not the projected top centre, because they are the
points a D-inBC prompt carries (`<b>(cx, cy), {w, h}</b>`; in LLaRA's VIMA data too the
action points, object positions, lie near the detected box centres): a policy then copies
them instead of doing digit arithmetic (the top centre of a 4 cm block lies ~0.02 above
its box centre in y). The depth under a box centre is the object's top or upper front face, and
the primitive's depth window and snap put the cup on it. `reach` gets a joint trajectory from
the motion planner, handed out one control period at a time as `JointStepAction`s (4
decimals, as LLARVA prints them).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import SimError
from llara_edge.geometry.motion import interpolate, plan_reach
from llara_edge.sim.camera import project_points
from llara_edge.sim.catalog import CONTAINERS
from llara_edge.sim.env import TabletopEnv
from llara_edge.sim.oracle import ObjectInfo
from llara_edge.sim.success import inside

REACH_CLEARANCE = 0.012  # m above the object top where the expert puts the cup face
QUADRANT_OFFSET = 0.45  # fraction of the inner half side: where multi-object places go
_QUADRANTS = ((1, 1), (-1, -1), (1, -1), (-1, 1))


def _center(info: ObjectInfo) -> tuple[float, float]:
    """Centre of the object's image box, as the D-inBC prompt prints it."""
    return _norm(info.bbox[:2])


def _norm(point: tuple[float, float]) -> tuple[float, float]:
    """Clip to the image and round to 3 decimals, as the text format would."""
    return tuple(round(min(1.0, max(0.0, float(v))), 3) for v in point)


class ScriptedExpert:
    """Oracle policy for a TabletopEnv; call `act()` once per step."""

    def __init__(self, env: TabletopEnv):
        self.env = env
        self._plan: list[JointStepAction] = []
        self._episode = -1

    def act(self) -> PickPlaceAction | JointStepAction:
        """The next action for the current task and state."""
        family = self.env.task.family
        policy = _POLICIES.get(family)
        if policy is None:
            raise SimError(f"the expert has no policy for task family {family!r}")
        return policy(self)

    def _objects(self) -> dict[str, ObjectInfo]:
        return {o.name: o for o in self.env.oracle_objects()}

    def _visual_manipulation(self) -> PickPlaceAction:
        task, objs = self.env.task, self._objects()
        target = objs[task.targets[0]]
        return PickPlaceAction(_center(target), _center(objs[task.container]), 0, "suction",
                               target.name)

    def _rotate(self) -> PickPlaceAction:
        target = self._objects()[self.env.task.targets[0]]
        point = _center(target)
        return PickPlaceAction(point, point, self.env.task.rotation_deg, "suction", target.name)

    def _scene_understanding(self) -> PickPlaceAction:
        task, objs = self.env.task, self._objects()
        box = task.item(task.container)
        poses = self.env.world.poses()
        done = [n for n in task.targets if inside(box, poses[n])]
        todo = [n for n in task.targets if n not in done]
        if not todo:  # already solved: put the last object back where it is
            todo = [task.targets[-1]]
        kind = CONTAINERS[box.kind]
        reach = QUADRANT_OFFSET * (kind.half - kind.rim_width)
        sx, sy = _QUADRANTS[len(done) % len(_QUADRANTS)]
        c, s = math.cos(box.yaw), math.sin(box.yaw)
        spot = np.array([box.x + reach * (c * sx - s * sy), box.y + reach * (s * sx + c * sy),
                         kind.floor])
        px = project_points(self.env.intrinsics, self.env.T_base_cam, spot[None])[0]
        place = (px[0] / self.env.intrinsics.width, px[1] / self.env.intrinsics.height)
        return PickPlaceAction(_center(objs[todo[0]]), _norm(place), 0, "suction",
                               todo[0])

    def _reach(self) -> JointStepAction:
        env = self.env
        if self._episode != env.episode:  # plan once per episode, then replay
            target = np.array(self._objects()[env.task.targets[0]].position)
            target[2] += REACH_CLEARANCE
            q5 = env.world.q[:5]
            traj = interpolate(plan_reach(env.kin, q5, target, env.motion), q5,
                               env.cfg.control_dt)
            self._plan = [JointStepAction(tuple(round(float(v), 4) for v in q), 1.0)
                          for q in traj.q[1:]]
            self._episode = env.episode
        if len(self._plan) > 1:  # the last setpoint is held once the plan has run out
            return self._plan.pop(0)
        return self._plan[0]


_POLICIES: dict[str, Callable[[ScriptedExpert], PickPlaceAction | JointStepAction]] = {
    "visual_manipulation": ScriptedExpert._visual_manipulation,
    "rotate": ScriptedExpert._rotate,
    "scene_understanding": ScriptedExpert._scene_understanding,
    "reach": ScriptedExpert._reach,
}
