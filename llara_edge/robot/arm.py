"""Arm: the robot's motors on a `MotorBus`, in calibrated joint radians.

Contract:
- Joint vectors are (n,) kinematic radians in `RobotConfig.joints` order: the arm joints,
  then the tool motor. `to_steps` / `from_steps` apply each motor's calibration
  (`servo_rad = direction * q + offset_rad`) and the servo model's steps per revolution.
- `command(q)` is the only way a goal reaches the bus: the `JointGuard` (safety.py) first
  refuses non-finite values and clamps to the joint limits and to the speed limit relative
  to the previous goal, then the steps are checked once more against the step range of the
  limits, then ONE sync write sends every goal. `hold()` commands the present positions
  (falling back to the last goal when they cannot be read); `torque(on)` switches all motors.
- `read()` is one sync read of Present_Position. Bus errors (`DeviceError` and subclasses:
  timeouts, protocol errors, servo fault bits) propagate unchanged to the loop.
- `kinematics_for(cfg)` builds the kinematics model with the config's (narrower or equal)
  joint limits, so planner, safety layer and arm agree on one set of limits.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from llara_drivers.base import MotorBus
from llara_edge.errors import ConfigError, DeviceError, SafetyError
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.robot.config import RobotConfig
from llara_edge.robot.safety import JointGuard

KINEMATICS = {"so101": ArmKinematics.so101}


def kinematics_for(cfg: RobotConfig) -> ArmKinematics:
    """The config's kinematics model with its joint limits replaced by the config's limits
    (which must lie within the model's published limits)."""
    try:
        base = KINEMATICS[cfg.kinematics]()
    except KeyError as exc:
        raise ConfigError(f"unknown kinematics {cfg.kinematics!r}; known: {sorted(KINEMATICS)}"
                          ) from exc
    specs = (*base.joints, base.jaw)
    if tuple(j.name for j in cfg.joints) != tuple(s.name for s in specs):
        raise ConfigError(f"config joints {[j.name for j in cfg.joints]} do not match the "
                          f"{cfg.kinematics} motors {[s.name for s in specs]}")
    out = []
    for spec, cal in zip(specs, cfg.joints, strict=True):
        if cal.lower_rad < spec.lower - 1e-9 or cal.upper_rad > spec.upper + 1e-9:
            raise ConfigError(f"joint {cal.name}: limits [{cal.lower_rad}, {cal.upper_rad}] "
                              f"exceed the model's [{spec.lower}, {spec.upper}]")
        out.append(dataclasses.replace(spec, lower=cal.lower_rad, upper=cal.upper_rad,
                                       servo_id=cal.id))
    home = np.clip(base.home, [j.lower for j in out[:-1]], [j.upper for j in out[:-1]])
    return ArmKinematics(tuple(out[:-1]), base.tool, out[-1], home, base.ik_config)


class Arm:
    """Calibrated position control of every motor of one robot over one bus."""

    def __init__(self, bus: MotorBus, cfg: RobotConfig, guard: JointGuard | None = None):
        self.bus = bus
        self.cfg = cfg
        self.guard = guard or JointGuard(cfg)
        self.ids = cfg.ids
        model = bus.model
        self._spr, self._centre = model.steps_per_rev, model.centre
        lo_steps = self.to_steps(cfg.lower)
        hi_steps = self.to_steps(cfg.upper)
        self.min_steps = np.minimum(lo_steps, hi_steps)  # (n,) allowed goal range per motor
        self.max_steps = np.maximum(lo_steps, hi_steps)
        if np.any(self.min_steps < 0) or np.any(self.max_steps >= model.steps_per_rev):
            raise ConfigError("joint limits map outside the servo's position range")
        self.last_goal: np.ndarray | None = None  # (n,) rad, the last goal sent
        self.goals_sent = 0
        self._lock = threading.RLock()  # the watchdog may hold from its own thread

    # -- units
    def to_steps(self, q) -> np.ndarray:
        """(n,) joint rad -> (n,) integer servo steps."""
        q = np.asarray(q, float)
        servo = np.array([j.to_servo(v) for j, v in zip(self.cfg.joints, q, strict=True)])
        return np.rint(servo * self._spr / (2 * np.pi) + self._centre).astype(int)

    def from_steps(self, steps) -> np.ndarray:
        """(n,) servo steps -> (n,) joint rad."""
        servo = (np.asarray(steps, float) - self._centre) * (2 * np.pi / self._spr)
        return np.array([j.from_servo(v) for j, v in zip(self.cfg.joints, servo, strict=True)])

    # -- bus
    def connect(self) -> np.ndarray:
        """Open the bus, ping every motor, read the present pose; it becomes the last goal."""
        if not self.bus.is_open:
            self.bus.open()
        for sid in self.ids:
            self.bus.ping(sid)
        q = self.read()
        with self._lock:
            self.last_goal = q.copy()
        return q

    def read(self) -> np.ndarray:
        """Present positions (n,) rad, one sync read."""
        steps = self.bus.sync_read("Present_Position", self.ids)
        return self.from_steps([steps[sid] for sid in self.ids])

    def command(self, q, dt: float | None = None) -> np.ndarray:
        """Guard, then send goal positions (n,) rad; returns what was sent (rad).
        `dt`: seconds since the previous goal, for the speed limit (default: setpoint_dt_s)."""
        with self._lock:
            if self.last_goal is None:
                raise SafetyError("arm not connected: no reference pose for the speed limit")
            dt = self.cfg.safety.setpoint_dt_s if dt is None else dt
            safe = self.guard.filter(np.asarray(q, float), self.last_goal, dt)
            steps = self.to_steps(safe)
            if np.any(steps < self.min_steps) or np.any(steps > self.max_steps):
                raise SafetyError(f"goal steps {steps.tolist()} leave the calibrated range")
            self.bus.sync_write("Goal_Position", dict(zip(self.ids, steps.tolist(),
                                                          strict=True)))
            self.last_goal = safe
            self.goals_sent += 1
            return safe

    def hold(self) -> np.ndarray:
        """Command the present pose (stop where the arm is); the last goal if unreadable."""
        with self._lock:
            try:
                q = self.read()
            except DeviceError:
                if self.last_goal is None:
                    raise
                q = self.last_goal
            return self.command(q)

    def torque(self, on: bool) -> None:
        if on:
            self.bus.enable_torque(self.ids)
        else:
            self.bus.disable_torque(self.ids)

    def close(self) -> None:
        self.bus.close()
