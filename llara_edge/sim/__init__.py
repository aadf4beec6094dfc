"""MuJoCo tabletop simulator: the world llara-edge's embedded default acts in.

Public API:
- `SimConfig`, `TabletopEnv(cfg).reset(family, level, seed) -> Observation`, `.observe()`,
  `.task` (TaskInstance), `.oracle_objects() -> list[ObjectInfo]`,
  `.execute(PickPlaceAction | JointStepAction) -> StepOutcome`, `.success()`, `.close()`
- `ScriptedExpert(env).act()`, `render_annotated(obs, objects, action)`
- `TASK_FAMILIES`, `LEVELS`, `TASK_REGISTRY`, `pixel_to_base`
MuJoCo's GL backend defaults to EGL (headless) unless MUJOCO_GL is already set; this must
happen before mujoco is first imported, hence here.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from llara_edge.robot.annotate import render_annotated
from llara_edge.sim.config import SimConfig
from llara_edge.sim.env import Observation, StepOutcome, TabletopEnv
from llara_edge.sim.expert import ScriptedExpert
from llara_edge.sim.oracle import ObjectInfo
from llara_edge.sim.perception import pixel_to_base
from llara_edge.sim.tasks import LEVELS, TASK_FAMILIES, TASK_REGISTRY, TaskInstance

__all__ = [
    "LEVELS",
    "TASK_FAMILIES",
    "TASK_REGISTRY",
    "ObjectInfo",
    "Observation",
    "ScriptedExpert",
    "SimConfig",
    "StepOutcome",
    "TabletopEnv",
    "TaskInstance",
    "pixel_to_base",
    "render_annotated",
]
