"""Safety layer: nothing outside the robot's limits ever reaches the servo bus.

Two levels, both applied before any byte is written:
- `JointGuard.filter(q, q_prev, dt)` (used by `Arm.command` on every goal): refuses
  non-finite values (`SafetyError`), clamps each joint to its limits and each step to
  `max_speed_rad_s * dt` from the previous goal. Clamps are counted in `clamps`.
- `SafetyLayer` (used by the loop on every decision): target points must lie in the
  workspace box (`check_point`); trajectories (planned joint setpoints) must stay inside the
  joint limits, the speed limits, the workspace box (tool tip) and above the table (every
  link origin), or the whole trajectory is refused; joint-step targets (LLARVA) are clamped
  to the limits and their duration stretched to respect the speed limit; a joint step whose
  tool tip leaves the box (or a link the table) at any setpoint is refused.
- Refusals are typed: `SafetyError` here; the loop also refuses on `ParseError` (malformed
  model output), `DepthError` (no depth at a predicted point) and `GeometryError`
  (unreachable). `refusal_reason(exc)` maps any of them to a short tag for telemetry.
Units: radians, metres, seconds; joint vectors in `RobotConfig.joints` order.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from llara_edge.errors import (
    ConfigError,
    DepthError,
    DeviceError,
    GeometryError,
    LlaraEdgeError,
    ParseError,
    ProtocolError,
    SafetyError,
)
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.geometry.motion import JointTrajectory
from llara_edge.robot.config import RobotConfig

SPEED_TOL = 1.02  # planned setpoints may exceed the speed limit by 2 % (rounding)
LIMIT_TOL_RAD = 1e-6

# error type -> refusal tag, most specific first
REFUSAL_TAGS: tuple[tuple[type[LlaraEdgeError], str], ...] = (
    (ParseError, "parse_error"),
    (DepthError, "no_depth"),
    (GeometryError, "unreachable"),
    (SafetyError, "safety"),
    (ProtocolError, "bus_protocol"),
    (DeviceError, "device"),
    (ConfigError, "config"),
)


def refusal_reason(exc: BaseException) -> str:
    """Short tag of why a step was refused or aborted (e.g. "parse_error", "no_depth")."""
    reason = getattr(exc, "reason", None)
    for cls, tag in REFUSAL_TAGS:
        if isinstance(exc, cls):
            if cls in (SafetyError, DeviceError) and isinstance(reason, str):
                return f"{tag}:{reason}"
            return tag
    return type(exc).__name__


class SafetyRefusal(SafetyError):
    """A command the safety layer refused; `reason` is a short tag."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class JointGuard:
    """Last check on every goal: finite, inside the joint limits, under the speed limit."""

    def __init__(self, cfg: RobotConfig):
        self.lower, self.upper = cfg.lower, cfg.upper
        self.max_speed = cfg.max_speed
        self.clamps: Counter = Counter()  # "limit" / "speed" -> goals clamped

    def filter(self, q: np.ndarray, q_prev: np.ndarray, dt: float) -> np.ndarray:
        """The goal actually sent for a requested goal `q` (n,) after `q_prev` (n,)."""
        q = np.asarray(q, float)
        if q.shape != self.lower.shape or not np.all(np.isfinite(q)):
            raise SafetyRefusal("bad_goal", f"goal must be {self.lower.shape[0]} finite "
                                f"values, got {np.asarray(q).tolist()}")
        if dt <= 0:
            raise SafetyRefusal("bad_goal", f"dt must be positive, got {dt}")
        limited = np.clip(q, self.lower, self.upper)
        if np.any(np.abs(limited - q) > LIMIT_TOL_RAD):
            self.clamps["limit"] += 1
        step = self.max_speed * dt
        safe = np.clip(limited, q_prev - step, q_prev + step)
        if np.any(np.abs(safe - limited) > LIMIT_TOL_RAD):
            self.clamps["speed"] += 1
        return safe


class SafetyLayer:
    """Workspace, reachability, joint and speed limits for whole decisions."""

    def __init__(self, cfg: RobotConfig, kin: ArmKinematics):
        self.cfg, self.kin = cfg, kin
        self.box = cfg.workspace
        self.lower, self.upper = cfg.lower, cfg.upper
        self.max_speed = cfg.max_speed
        self.n_arm = len(kin.joints)
        self.refusals: Counter = Counter()  # reason tag -> count
        self.clamped_targets = 0

    def refuse(self, exc: BaseException) -> str:
        """Count a refusal and return its tag."""
        tag = refusal_reason(exc)
        self.refusals[tag] += 1
        return tag

    def check_point(self, xyz, what: str) -> np.ndarray:
        """A target point (3,) m in the base frame, refused outside the workspace box."""
        p = np.asarray(xyz, float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise SafetyRefusal("bad_point", f"{what} point must be 3 finite values")
        if not self.box.contains(p):
            raise SafetyRefusal("outside_workspace",
                                f"{what} point ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) m is "
                                f"outside the box {self.box.min} .. {self.box.max}")
        return p

    def check_pose(self, q_arm: np.ndarray) -> None:
        """Tool tip in the box and every link origin above the table, for arm joints (5,)."""
        frames = self.kin.fk_all(q_arm)
        tip = frames[-1][:3, 3]
        if not self.box.contains(tip, tol=1e-4):
            raise SafetyRefusal("outside_workspace",
                                f"tool tip ({tip[0]:.3f}, {tip[1]:.3f}, {tip[2]:.3f}) m "
                                "leaves the workspace box")
        low = min(f[2, 3] for f in frames[1:-1])
        if low < self.box.min_link_height_m - 1e-4:
            raise SafetyRefusal("below_table", f"a link origin reaches z = {low:.3f} m")

    def check_trajectory(self, traj: JointTrajectory, q_start: np.ndarray,
                         stride: int = 1) -> JointTrajectory:
        """Refuse a planned trajectory (setpoints (N, 5) rad) that leaves the joint limits,
        the speed limit or the workspace; poses are checked every `stride` setpoints and at
        the end."""
        q = np.asarray(traj.q, float)
        if q.ndim != 2 or q.shape[1] != self.n_arm or not np.all(np.isfinite(q)):
            raise SafetyRefusal("bad_goal", f"trajectory must be (N, {self.n_arm}) finite")
        lo, hi = self.lower[:self.n_arm], self.upper[:self.n_arm]
        if np.any(q < lo - LIMIT_TOL_RAD) or np.any(q > hi + LIMIT_TOL_RAD):
            raise SafetyRefusal("joint_limit", "a setpoint leaves the joint limits")
        path = np.vstack([np.asarray(q_start, float)[None, :self.n_arm], q])
        dt = np.diff(np.concatenate([[0.0], traj.t]))[:, None]  # (N, 1) s per setpoint
        speed = np.abs(np.diff(path, axis=0)) / np.maximum(dt, 1e-9)
        if np.any(speed > self.max_speed[:self.n_arm] * SPEED_TOL):
            worst = float(np.max(speed / self.max_speed[:self.n_arm]))
            raise SafetyRefusal("speed_limit", f"a setpoint needs {worst:.2f} x the max speed")
        for i in [*range(0, len(q), max(1, stride)), len(q) - 1]:
            self.check_pose(q[i])
        return traj

    def joint_step(self, target: np.ndarray, q_now: np.ndarray, control_dt: float,
                   setpoint_dt: float) -> np.ndarray:
        """Setpoints (k, 5) from q_now to a joint-step target, clamped to the limits, timed
        for the speed limit (linear in joint space, at least `control_dt` long)."""
        target = np.asarray(target, float)[:self.n_arm]
        if target.shape != (self.n_arm,) or not np.all(np.isfinite(target)):
            raise SafetyRefusal("bad_goal", f"joint step needs {self.n_arm} finite values")
        lo, hi = self.lower[:self.n_arm], self.upper[:self.n_arm]
        clamped = np.clip(target, lo, hi)
        if np.any(clamped != target):
            self.clamped_targets += 1
        q_now = np.asarray(q_now, float)[:self.n_arm]
        need = float(np.max(np.abs(clamped - q_now) / self.max_speed[:self.n_arm]))
        k = max(1, round(control_dt / setpoint_dt), int(np.ceil(need / setpoint_dt)))
        alphas = np.arange(1, k + 1)[:, None] / k
        setpoints = q_now + alphas * (clamped - q_now)
        for q in setpoints:  # a straight joint-space line can still dip into the table
            self.check_pose(q)
        return setpoints
