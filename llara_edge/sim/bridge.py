"""The simulator's plant: the MuJoCo arm as the body of the virtual servos.

Contract (a plant as in llara_edge.robot.plant: `advance(dt)`, `settle(seconds)`,
`set_tool(tool)`, `time`):
- `SimBridge` makes the simulator's arm the servos' body: a `VirtualServoBus` (external
  motion) answers the real driver on a pty; `advance` first waits until the virtual bus has
  served every packet the driver sent (lockstep, so a goal always takes effect before the
  physics it belongs to), then copies each servo's Goal_Position into the MuJoCo position
  actuator (through `truth`, the calibration of the simulated hardware), switches suction
  from the tool motor's goal (nearer `closed_rad` = on), steps the physics for `dt`, and
  writes the joint angles back as Present_Position steps (quantised like encoders). A motor
  with torque off is not driven (its target follows its measured angle).
Units: seconds, radians; servo values in steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from llara_edge.errors import DeviceError
from llara_edge.hw_drivers.virtual.pty_bus import VirtualServoBus
from llara_edge.robot.config import RobotConfig
from llara_edge.sim.world import World

LOCKSTEP_TIMEOUT_S = 5.0  # a virtual bus that has not served a packet by then is broken


class SimBridge:
    """Virtual servo registers <-> MuJoCo arm, stepped in lockstep with the driver."""

    def __init__(self, virtual: VirtualServoBus, truth: RobotConfig,
                 sent_packets: Callable[[], int]):
        self.virtual = virtual
        self.truth = truth
        self._sent = sent_packets
        self.ids = truth.ids
        self.world: World | None = None
        self.picked: list[str] = []  # objects the cup attached, in order
        model = virtual.model
        self._spr, self._centre = model.steps_per_rev, model.centre
        self.steps_advanced = 0

    # -- unit conversion through the simulated hardware's calibration
    def _steps_to_q(self, steps: dict[int, int]) -> np.ndarray:
        servo = (np.array([steps[i] for i in self.ids], float) - self._centre) * (
            2 * np.pi / self._spr)
        return np.array([j.from_servo(v) for j, v in zip(self.truth.joints, servo, strict=True)])

    def _q_to_steps(self, q: np.ndarray) -> dict[int, int]:
        servo = np.array([j.to_servo(v) for j, v in zip(self.truth.joints, q, strict=True)])
        steps = np.rint(servo * self._spr / (2 * np.pi) + self._centre).astype(int)
        return dict(zip(self.ids, steps.tolist(), strict=True))

    # -- episodes
    def attach(self, world: World) -> None:
        """A new episode's world: the encoders report its arm pose."""
        self.world = world
        self.picked = []
        self.virtual.set_present_positions(self._q_to_steps(world.q))

    def _world(self) -> World:
        if self.world is None:
            raise DeviceError("sim bridge: no world attached (reset an episode first)")
        return self.world

    def set_tool(self, tool: str) -> None:
        """Sweeps push with the cup (contacts on); suction picks pass through (contacts off)."""
        self._world().cup_contacts(tool == "spatula")

    @property
    def time(self) -> float:
        return self._world().time

    # -- stepping
    def _sync(self) -> None:
        want = self._sent()
        if not self.virtual.wait_requests(want, LOCKSTEP_TIMEOUT_S):
            raise DeviceError(f"virtual bus served {self.virtual.requests} of {want} packets "
                              f"within {LOCKSTEP_TIMEOUT_S} s")

    def _apply_goals(self, world: World) -> None:
        goal = self._steps_to_q(self.virtual.goal_positions())  # (6,) rad
        torque = self.virtual.torque_enabled()
        measured = world.q
        target = np.array([goal[k] if torque[sid] else measured[k]
                           for k, sid in enumerate(self.ids)])
        ids = world.index.arm.actuator_ids
        n = len(world.kin.joints)
        world.data.ctrl[ids[:n]] = np.clip(target[:n], world.kin.lower, world.kin.upper)
        world.set_jaw(float(target[n]))
        held = world.suction.held
        world.suction.update(self.truth.tool.is_gripping(goal[n]) and torque[self.ids[n]])
        if world.suction.held is not None and world.suction.held != held:
            self.picked.append(world.suction.held)

    def advance(self, dt: float) -> None:
        world = self._world()
        self._sync()
        self._apply_goals(world)
        world.step(max(1, round(dt / world.cfg.timestep)))
        self.steps_advanced += 1
        self.virtual.set_present_positions(self._q_to_steps(world.q))

    def settle(self, seconds: float) -> None:
        """Let objects come to rest with the goals held (in setpoint-sized chunks)."""
        dt = self.truth.safety.setpoint_dt_s
        for _ in range(max(1, round(seconds / dt))):
            self.advance(dt)
