"""Physics of one episode: the compiled scene, the arm's position servos, the suction cup.

The arm is driven only through its position actuators (joint-space setpoints, radians), as
the real servos are; the world never teleports it after reset. `drive` holds each setpoint
for `substeps` physics steps (zero-order hold, like a servo bus written at 1 / (substeps *
timestep) Hz) and applies the commanded suction state before each hold. Contacts of the
cup are off while it holds an object (the weld carries it) and during pick-and-place in
general; they are switched on only for sweeps, where the cup pushes objects.
"""

from __future__ import annotations

import mujoco
import numpy as np

from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.sim.config import SimConfig
from llara_edge.sim.objects import SceneItem
from llara_edge.sim.oracle import body_points, body_yaw
from llara_edge.sim.scene import build_scene, set_arm
from llara_edge.sim.success import Pose, WorldState
from llara_edge.sim.suction import Suction


class World:
    """One compiled scene with its MjData, suction state and start poses."""

    def __init__(self, cfg: SimConfig, kin: ArmKinematics, items: tuple[SceneItem, ...]):
        self.cfg, self.kin = cfg, kin
        self.model, self.index = build_scene(cfg, kin, items)
        self.data = mujoco.MjData(self.model)
        self.cup_contacts(False)
        set_arm(self.model, self.data, self.index, np.r_[kin.home, 0.0])
        self.suction = Suction(self.model, self.data, self.index, cfg.suction_reach_m)
        self.start = self.poses()

    def cup_contacts(self, on: bool) -> None:
        """Let the cup collide with objects (sweeps) or pass through them (suction)."""
        self.model.geom_contype[self.index.cup_geom] = int(on)
        self.model.geom_conaffinity[self.index.cup_geom] = int(on)

    @property
    def q(self) -> np.ndarray:
        """Measured joint positions (6,): five arm joints then the jaw motor, rad."""
        return self.data.qpos[self.index.arm.qpos_adr].copy()

    @property
    def q_target(self) -> np.ndarray:
        """Current position targets (6,) of the servos, rad."""
        return self.data.ctrl[self.index.arm.actuator_ids].copy()

    @property
    def tip(self) -> np.ndarray:
        """Tool tip (cup face centre) in the base frame, m."""
        return self.data.site_xpos[self.index.arm.tool_site_id].copy()

    def step(self, n: int) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)

    def drive(self, setpoints: np.ndarray, suction: np.ndarray, substeps: int) -> list[str]:
        """Track arm setpoints (N, 5) with suction flags (N,), `substeps` steps each.
        Returns the names of the objects the cup picked up on the way, in order."""
        ids = self.index.arm.actuator_ids[:5]
        picked: list[str] = []
        for q, on in zip(setpoints, suction, strict=True):
            self.data.ctrl[ids] = q
            held = self.suction.held
            self.suction.update(bool(on))
            if self.suction.held is not None and self.suction.held != held:
                picked.append(self.suction.held)
            self.step(substeps)
        return picked

    def set_jaw(self, value: float) -> None:
        """Position target of the sixth motor (jaw), rad, clipped to its range."""
        lo, hi = self.kin.jaw.lower, self.kin.jaw.upper
        self.data.ctrl[self.index.arm.actuator_ids[5]] = float(np.clip(value, lo, hi))

    def settle(self, seconds: float) -> None:
        """Let objects come to rest (suction off, servos holding)."""
        self.suction.update(False)
        self.step(max(1, round(seconds / self.cfg.timestep)))

    def poses(self) -> dict[str, Pose]:
        """Pose of every object (containers are static)."""
        out = {}
        for name, body in self.index.body.items():
            if name not in self.index.weld:
                continue
            adr = self.index.qvel_adr[name]
            out[name] = Pose(position=self.data.xpos[body].copy(),
                             yaw=body_yaw(self.data, body),
                             upright=float(self.data.xmat[body][8]),
                             speed=float(np.linalg.norm(self.data.qvel[adr:adr + 3])),
                             top_z=float(body_points(self.model, self.data, body)[:, 2].max()))
        return out

    def state(self) -> WorldState:
        return WorldState(self.poses(), self.start, self.suction.held, self.tip)

    @property
    def time(self) -> float:
        return float(self.data.time)
