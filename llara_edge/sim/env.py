"""TabletopEnv: the simulated world the embedded default acts in.

    env = TabletopEnv(SimConfig(width=320, height=240))
    obs = env.reset("visual_manipulation", "L1", seed=0)   # Observation
    out = env.execute(PickPlaceAction(...))                 # StepOutcome(success, done, info)

An episode is fully determined by (family, level, seed) and the config: same inputs, same
bytes. Observations follow RealSense conventions (camera.py). `execute` runs a whole
pick-and-place (or one joint step) through physics; a DepthError or GeometryError raised by
perception or planning comes out before the arm moves, and the attempt still counts as a step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from llara_drivers.camera_model import Intrinsics
from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import SimError
from llara_edge.geometry.kinematics import ArmKinematics, TopDownWorkspace
from llara_edge.geometry.motion import MotionConfig
from llara_edge.sim.camera import DEPTH_SCALE, base_from_camera
from llara_edge.sim.config import SimConfig
from llara_edge.sim.layout import Workspace
from llara_edge.sim.oracle import ObjectInfo, object_info
from llara_edge.sim.primitive import execute_joint_step, execute_pick_place
from llara_edge.sim.renderer import CameraRenderer
from llara_edge.sim.scene import CAMERA
from llara_edge.sim.success import evaluate
from llara_edge.sim.tasks import TaskInstance, sample_task
from llara_edge.sim.view import ViewCheck
from llara_edge.sim.world import World

MIN_ITEM_RADIUS = 0.09  # m: items stay clear of the arm base and the parked arm


@dataclass(frozen=True)
class Observation:
    """One RGB-D frame plus proprioception, as the real robot delivers it."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) uint16, depth_scale m per unit, 0 = no data
    depth_scale: float
    intrinsics: Intrinsics
    T_base_cam: np.ndarray  # (4, 4) RealSense camera frame -> base frame
    joints: np.ndarray  # (6,) rad: five arm joints, then the jaw motor
    time: float  # s of simulated time


@dataclass(frozen=True)
class StepOutcome:
    """Result of one executed action."""

    success: bool
    done: bool
    info: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _so101() -> tuple[ArmKinematics, TopDownWorkspace]:
    """The SO-101 model and its measured top-down workspace (about 1.5 s, done once)."""
    kin = ArmKinematics.so101()
    return kin, kin.top_down_workspace()


class TabletopEnv:
    """MuJoCo tabletop with the SO-101 suction arm and a front RGB-D camera."""

    def __init__(self, cfg: SimConfig | None = None, motion: MotionConfig | None = None):
        self.cfg = cfg or SimConfig()
        self.motion = motion or MotionConfig()
        self.kin, reach = _so101()
        self.workspace = Workspace(max(reach.r_min, MIN_ITEM_RADIUS), reach.r_max,
                                   min(Workspace.max_bearing, reach.azimuth_max))
        self.intrinsics = self.cfg.intrinsics
        self.T_base_cam = base_from_camera(np.asarray(self.cfg.camera_position, float),
                                           np.asarray(self.cfg.camera_target, float))
        self._view = ViewCheck(self.cfg, self.kin)
        self._world: World | None = None
        self._renderer: CameraRenderer | None = None
        self._task: TaskInstance | None = None
        self._obs: Observation | None = None
        self.steps = 0
        self.episode = 0  # incremented by every reset

    @property
    def task(self) -> TaskInstance:
        if self._task is None:
            raise SimError("call reset() first")
        return self._task

    @property
    def world(self) -> World:
        if self._world is None:
            raise SimError("call reset() first")
        return self._world

    def reset(self, family: str, level: str, seed: int) -> Observation:
        """Start an episode; returns its first observation."""
        task = sample_task(family, level, seed, self.workspace, self._view)
        self.close()
        self._task, self._world = task, World(self.cfg, self.kin, task.items)
        self._renderer = CameraRenderer(self._world.model, self.cfg, CAMERA)
        self._world.settle(0.05)  # contacts find their rest depth before the first frame
        self._world.start = self._world.poses()
        self.steps = 0
        self.episode += 1
        return self.observe()

    def observe(self) -> Observation:
        """Render the current frame (cached until the simulation moves on)."""
        world = self.world
        if self._obs is not None and self._obs.time == world.time:
            return self._obs
        rgb, depth = self._renderer.render(world.data)
        self._obs = Observation(rgb, depth, DEPTH_SCALE, self.intrinsics, self.T_base_cam.copy(),
                                world.q, world.time)
        return self._obs

    def oracle_objects(self) -> list[ObjectInfo]:
        """Oracle info of every object, then every container, in the task's item order."""
        w = self.world
        return [object_info(w.model, w.data, w.index.body[it.name], it.name, it.kind,
                            self.intrinsics, self.T_base_cam) for it in self.task.items]

    def execute(self, action: PickPlaceAction | JointStepAction) -> StepOutcome:
        """Run one action in physics and evaluate the task."""
        handler = {PickPlaceAction: self._pick_place, JointStepAction: self._joint_step}.get(
            type(action))
        if handler is None:
            raise SimError(f"cannot execute {type(action).__name__}")
        self.steps += 1
        info = handler(action)
        success, failure = evaluate(self.task, self.world.state())
        done = success or failure is not None or self.steps >= self.task.max_steps
        return StepOutcome(success, done, {**info, "step": self.steps, "failure": failure})

    def _pick_place(self, action: PickPlaceAction) -> dict:
        return execute_pick_place(self.world, self.observe(), action, self.motion)

    def _joint_step(self, action: JointStepAction) -> dict:
        return execute_joint_step(self.world, action)

    def success(self) -> bool:
        """Is the task solved in the current state?"""
        return evaluate(self.task, self.world.state())[0]

    def close(self) -> None:
        """Free the renderer (GL context); the env can be reset again afterwards."""
        if self._renderer is not None:
            self._renderer.close()
        self._renderer, self._world, self._obs = None, None, None
