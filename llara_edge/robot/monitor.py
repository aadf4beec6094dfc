"""Servo-side audit: every goal a virtual servo applies is checked against the robot limits.

`GoalMonitor(virtual, cfg)` hooks `VirtualServoBus.on_write` (chaining any previous hook)
and decodes each Goal_Position write the simulated servos APPLY, i.e. what really crossed
the wire. It recomputes each motor's allowed step range from the config's joint limits and
calibration (independently of `Arm`), and the largest step change per goal from the speed
limit and `safety.setpoint_dt_s` (+1 step of rounding). Every violation is recorded as a
readable string; `packets` counts goal writes per run. `reset()` forgets the previous goals
(a new episode teleports the simulated arm). Called from the bus's server thread.
"""

from __future__ import annotations

import math
import threading

from llara_drivers.virtual.pty_bus import VirtualServoBus
from llara_edge.robot.config import RobotConfig


class GoalMonitor:
    """Records and checks every applied Goal_Position write (see the module docstring)."""

    def __init__(self, virtual: VirtualServoBus, cfg: RobotConfig):
        model = virtual.model
        self._reg = model.register("Goal_Position")
        self._decode = virtual.adapter.codec(model)[1]
        per_rad = model.steps_per_rev / (2 * math.pi)
        self.limits: dict[int, tuple[float, float]] = {}
        self.max_step: dict[int, float] = {}
        for j in cfg.joints:
            ends = [j.to_servo(j.lower_rad) * per_rad + model.centre,
                    j.to_servo(j.upper_rad) * per_rad + model.centre]
            self.limits[j.id] = (min(ends) - 0.5, max(ends) + 0.5)  # rounding to a step
            self.max_step[j.id] = j.max_speed_rad_s * cfg.safety.setpoint_dt_s * per_rad + 1.0
        self.packets = 0
        self.violations: list[str] = []
        self.history: list[tuple[int, int]] = []  # (servo id, steps), capped
        self._last: dict[int, int] = {}
        self._lock = threading.Lock()
        self._previous = virtual.on_write
        virtual.on_write = self._on_write

    def reset(self) -> None:
        with self._lock:
            self._last.clear()

    def _on_write(self, servo_id: int, address: int, data: bytes) -> None:
        if self._previous is not None:
            self._previous(servo_id, address, data)
        if address != self._reg.address or len(data) != self._reg.size:
            return
        steps = self._reg.from_raw(self._decode(data))
        with self._lock:
            self.packets += 1
            if len(self.history) < 200_000:
                self.history.append((servo_id, steps))
            lo, hi = self.limits.get(servo_id, (math.inf, -math.inf))
            if not lo <= steps <= hi:
                self.violations.append(f"servo {servo_id}: goal {steps} outside "
                                       f"[{lo + 0.5:.0f}, {hi - 0.5:.0f}]")
            last = self._last.get(servo_id)
            if last is not None and abs(steps - last) > self.max_step[servo_id]:
                self.violations.append(f"servo {servo_id}: goal jumps {steps - last} steps "
                                       f"(max {self.max_step[servo_id]:.1f})")
            self._last[servo_id] = steps
