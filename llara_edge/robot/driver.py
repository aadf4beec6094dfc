"""Driver: setpoints -> arm goals, one per tick, with read-back, tracking and stall checks.

Contract:
- `Driver(arm, plant, cfg, watchdog)`. `drive(q_arm, grip, dts)` sends setpoint k (arm
  joints (n,) rad plus the tool goal for grip[k]) through `Arm.command` (the JointGuard
  clamps or refuses it before the bus), lets the plant advance dts[k] seconds, reads the
  present pose back (`read_back`) and raises `SafetyRefusal("tracking_error")` when an arm
  joint is farther than `safety.max_tracking_error_rad` from its goal (collision, stall).
  Each setpoint runs under the watchdog's `setpoint_deadline_s`; an overrun raises
  `SafetyRefusal("stalled")` after the watchdog has held the arm.
- A stop request (`watchdog.stop_requested`) raises `StopRequested` before the next setpoint.
- `move_to(q_arm, grip, speed)` drives a min-jerk joint move to q_arm at a peak joint speed.
"""

from __future__ import annotations

import numpy as np

from llara_edge.errors import LlaraEdgeError
from llara_edge.geometry.motion import MIN_JERK_PEAK, Waypoint, interpolate
from llara_edge.robot.arm import Arm
from llara_edge.robot.config import RobotConfig
from llara_edge.robot.safety import SafetyRefusal
from llara_edge.robot.watchdog import Watchdog


class StopRequested(LlaraEdgeError):
    """The loop was asked to stop (signal or caller); the message is the reason."""


class Driver:
    """Runs joint setpoints on an arm and a plant (see the module docstring)."""

    def __init__(self, arm: Arm, plant, cfg: RobotConfig, watchdog: Watchdog,
                 read_back: bool = True):
        self.arm, self.plant, self.cfg, self.watchdog = arm, plant, cfg, watchdog
        self.read_back = read_back
        self.setpoints = 0

    def check_stop(self) -> None:
        if self.watchdog.stop_requested:
            raise StopRequested(self.watchdog.stop_reason)

    def drive(self, q_arm: np.ndarray, grip: np.ndarray, dts: np.ndarray) -> None:
        """Setpoints (N, n_arm) rad with tool states (N,) bool, setpoint k held dts[k] s."""
        tool, safety = self.cfg.tool, self.cfg.safety
        n = q_arm.shape[1]
        for k in range(len(q_arm)):
            self.check_stop()
            dt = float(dts[k])
            if dt <= 0:
                continue
            with self.watchdog.guard("drive", safety.setpoint_deadline_s) as deadline:
                sent = self.arm.command(np.r_[q_arm[k], tool.goal(bool(grip[k]))], dt)
                self.plant.advance(dt)
                present = self.arm.read() if self.read_back else None
            self.setpoints += 1
            if deadline.expired:
                raise SafetyRefusal("stalled", f"setpoint {k} took {deadline.elapsed_s:.2f} s")
            if present is not None:
                err = float(np.max(np.abs(present[:n] - sent[:n])))
                if err > safety.max_tracking_error_rad:
                    raise SafetyRefusal("tracking_error", f"present pose {err:.3f} rad from "
                                        f"the goal (limit {safety.max_tracking_error_rad} "
                                        "rad): collision or stall")

    def move_to(self, q_arm: np.ndarray, grip: bool, speed_rad_s: float) -> None:
        """Min-jerk joint move from the present pose to q_arm (n,) at a peak `speed_rad_s`."""
        n = len(q_arm)
        q0 = self.arm.read()[:n]
        dist = float(np.max(np.abs(np.asarray(q_arm) - q0)))
        duration = max(self.cfg.safety.setpoint_dt_s, MIN_JERK_PEAK * dist / speed_rad_s)
        traj = interpolate([Waypoint(np.asarray(q_arm, float), grip, duration)], q0,
                           self.cfg.safety.setpoint_dt_s)
        self.drive(traj.q[1:], traj.suction[1:], np.diff(traj.t))
