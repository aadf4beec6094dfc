"""Joint-space motion plans for suction pick-and-place, sweeping and reaching.

Contract
- Units: metres in the robot base frame (see kinematics.py), radians, seconds.
- A plan is a list of `Waypoint`s. Each waypoint's `q` (5,) is reached `duration_s` after the
  previous one (the first after `q_start`); `suction` is the state commanded while moving
  to it. A run of `via=True` waypoints and the plain waypoint closing it form one group:
  a straight-line Cartesian path sampled by IK that `interpolate` traverses with ONE
  min-jerk profile (no stop at the via points). Every q is checked against the joint limits.
- Durations keep every joint under its speed limit for a min-jerk profile (peak speed =
  1.875 x distance / duration) and are at least `min_segment_s`.
- Picks: `pick_xyz` is where the cup face touches the object (its top). Places: the object
  hangs `carry_offset_m` below the cup (default: pick height, i.e. an object resting on the
  table), so the cup face is released `carry_offset_m + release_height_m` above `place_xyz`.
- Rotation: `rotation_deg` turns the held object CLOCKWISE seen from above (a negative turn
  about base +z), relative to the table, whatever the pan moves on the way. The wrist_roll
  (+-160 deg) cannot always turn the literal angle; then the equivalent angle +-360 deg
  (same final pose) is used. GeometryError if no roll choice fits.
- Approach and lift heights: the highest reachable value <= the configured one and
  >= `min_clearance_m` (the top-down workspace thins out above z ~ 0.1 m).
Pure numpy: no MuJoCo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from llara_edge.errors import ConfigError, GeometryError
from llara_edge.geometry.kinematics import ArmKinematics

MIN_JERK_PEAK = 1.875  # peak of d/dtau of 10 tau^3 - 15 tau^4 + 6 tau^5


@dataclass(frozen=True)
class MotionConfig:
    """Heights (m above the relevant point), joint speeds (rad/s) and dwell times (s)."""

    approach_height_m: float = 0.05
    lift_height_m: float = 0.06
    min_clearance_m: float = 0.015
    release_height_m: float = 0.005
    sweep_height_m: float = 0.006  # cup face above the table while sweeping
    sweep_backoff_m: float = 0.03  # cup centre behind the object centre, along the sweep
    travel_speed_rad_s: float = 2.0
    approach_speed_rad_s: float = 0.8  # straight-line descents, lifts and sweeps
    suction_settle_s: float = 0.25
    release_settle_s: float = 0.25
    min_segment_s: float = 0.15
    cartesian_step_m: float = 0.01  # via-point spacing on straight-line paths
    return_home: bool = True

    def __post_init__(self) -> None:
        heights = (self.approach_height_m, self.lift_height_m, self.min_clearance_m,
                   self.cartesian_step_m)
        if min(heights) <= 0 or self.release_height_m < 0 or self.sweep_height_m < 0:
            raise ConfigError("heights and steps must be positive (release/sweep >= 0)")
        if self.min_clearance_m > min(self.approach_height_m, self.lift_height_m):
            raise ConfigError("min_clearance_m must not exceed the approach and lift heights")
        if min(self.travel_speed_rad_s, self.approach_speed_rad_s, self.min_segment_s) <= 0:
            raise ConfigError("speeds and min_segment_s must be positive")
        if min(self.suction_settle_s, self.release_settle_s, self.sweep_backoff_m) < 0:
            raise ConfigError("settle times and sweep_backoff_m must be >= 0")


@dataclass(frozen=True)
class Waypoint:
    """Joint target q (rad), suction while moving to it, time to reach it (s)."""

    q: np.ndarray
    suction: bool
    duration_s: float
    via: bool = False

    def __post_init__(self) -> None:
        q = np.asarray(self.q, dtype=float)
        if q.ndim != 1 or not np.all(np.isfinite(q)) or not self.duration_s >= 0:
            raise ConfigError(f"waypoint needs finite 1-D q and duration >= 0, got {self.q!r}")
        object.__setattr__(self, "q", q)


@dataclass(frozen=True)
class JointTrajectory:
    """Setpoints sampled every dt: t (N,) s, q (N, 5) rad, suction (N,) bool."""

    t: np.ndarray
    q: np.ndarray
    suction: np.ndarray


def _duration(dist_rad: float, speed: float, cfg: MotionConfig) -> float:
    return max(cfg.min_segment_s, MIN_JERK_PEAK * dist_rad / speed)


def _move(q_from: np.ndarray, q_to: np.ndarray, suction: bool, speed: float,
          cfg: MotionConfig) -> Waypoint:
    return Waypoint(q_to, suction, _duration(float(np.max(np.abs(q_to - q_from))), speed, cfg))


def _dwell(q: np.ndarray, suction: bool, seconds: float) -> Waypoint:
    return Waypoint(q.copy(), suction, seconds)


def _line(kin: ArmKinematics, q_from: np.ndarray, xyz_from, xyz_to, suction: bool,
          cfg: MotionConfig) -> list[Waypoint]:
    """Tool-down straight line xyz_from -> xyz_to as via points + end, wrist_roll kept."""
    a, b = np.asarray(xyz_from, float), np.asarray(xyz_to, float)
    n = max(1, math.ceil(float(np.linalg.norm(b - a)) / cfg.cartesian_step_m))
    qs, q = [], q_from
    for k in range(1, n + 1):
        q = kin.ik(a + (b - a) * k / n, tool_down=True, q0=q)
        qs.append(q)
    steps = np.abs(np.diff(np.vstack([q_from, *qs]), axis=0)).max(axis=1)  # (n,) L-inf
    total = _duration(float(steps.sum()), cfg.approach_speed_rad_s, cfg)
    share = steps / steps.sum() if steps.sum() > 0 else np.full(n, 1.0 / n)
    return [Waypoint(qk, suction, float(total * s), via=k < n - 1)
            for k, (qk, s) in enumerate(zip(qs, share, strict=True))]


def _above(kin: ArmKinematics, xyz, height: float, cfg: MotionConfig,
           q0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(point, q) straight above xyz at the highest reachable clearance <= height."""
    base = np.asarray(xyz, float)
    for dz in np.arange(height, cfg.min_clearance_m - 1e-9, -0.005):
        point = base + np.array([0.0, 0.0, float(dz)])
        try:
            return point, kin.ik(point, tool_down=True, q0=q0)
        except GeometryError:
            continue
    raise GeometryError(f"no tool-down pose at least {cfg.min_clearance_m} m above "
                        f"({base[0]:.3f}, {base[1]:.3f}, {base[2]:.3f}) m")


def _yaw_signs(kin: ArmKinematics) -> tuple[float, float]:
    """d(tool yaw)/d(shoulder_pan) and d(tool yaw)/d(wrist_roll) for tool-down poses (+-1).

    With the tool axis vertical both joints turn the tool about vertical axes, so the rates
    are the z components of their axes (row wz of the Jacobian), +-1 up to the home tilt."""
    jac = kin.jacobian(kin.home)
    return float(np.sign(jac[5, 0])), float(np.sign(jac[5, -1]))


def _rolls(kin: ArmKinematics, pan_pick: float, pan_place: float,
           rotation_deg: int) -> tuple[float, float, float]:
    """wrist_roll at pick, after the transfer (object yaw kept) and after the rotation."""
    pan_rate, roll_rate = _yaw_signs(kin)
    transfer = -pan_rate * (pan_place - pan_pick) / roll_rate  # roll change keeping yaw
    lo, hi = kin.lower[-1], kin.upper[-1]
    for deg in sorted({rotation_deg, rotation_deg - 360, rotation_deg + 360},
                      key=lambda d: (d != rotation_deg, abs(d))):
        turn = -math.radians(deg) / roll_rate  # clockwise = negative yaw
        offsets = (0.0, transfer, transfer + turn)
        if max(offsets) - min(offsets) <= hi - lo:
            r0 = (lo + hi) / 2 - (max(offsets) + min(offsets)) / 2
            return r0, r0 + transfer, r0 + transfer + turn
    raise GeometryError(f"wrist_roll cannot turn the object by {rotation_deg} deg while the "
                        f"pan moves {math.degrees(pan_place - pan_pick):.0f} deg")


def _with_roll(q: np.ndarray, roll: float) -> np.ndarray:
    out = q.copy()
    out[-1] = roll
    return out


def _finish(kin: ArmKinematics, plan: list[Waypoint], cfg: MotionConfig) -> list[Waypoint]:
    """Append the return home (if configured) and check every q against the limits."""
    if cfg.return_home:
        plan.append(_move(plan[-1].q, kin.home, False, cfg.travel_speed_rad_s, cfg))
    for i, wp in enumerate(plan):
        if wp.q.shape != kin.lower.shape or not kin.within_limits(wp.q):
            raise GeometryError(f"waypoint {i} is outside the joint limits: {wp.q.round(4)}")
    return plan


def plan_pick_place(kin: ArmKinematics, q_start, pick_xyz, place_xyz, rotation_deg: int,
                    cfg: MotionConfig, carry_offset_m: float | None = None) -> list[Waypoint]:
    """Approach, descend, suction on, lift, transfer, rotate, descend, release, retreat, home."""
    q_start = np.asarray(q_start, float)
    pick, place = np.asarray(pick_xyz, float), np.asarray(place_xyz, float)
    carry = float(pick[2]) if carry_offset_m is None else float(carry_offset_m)
    release = place + np.array([0.0, 0.0, carry + cfg.release_height_m])
    q_pick = kin.ik(pick, tool_down=True, q0=_with_roll(q_start, 0.0))
    q_release = kin.ik(release, tool_down=True, q0=q_pick)
    r_pick, r_transfer, r_place = _rolls(kin, q_pick[0], q_release[0], rotation_deg)
    q_pick = _with_roll(q_pick, r_pick)
    above_pick, q_above_pick = _above(kin, pick, cfg.approach_height_m, cfg, q_pick)
    lifted, _ = _above(kin, pick, cfg.lift_height_m, cfg, q_pick)
    above_place, q_above_place = _above(kin, release, cfg.approach_height_m, cfg, q_release)
    q_above_place = _with_roll(q_above_place, r_transfer)
    fast = cfg.travel_speed_rad_s

    plan = [_move(q_start, q_above_pick, False, fast, cfg)]
    plan += _line(kin, q_above_pick, above_pick, pick, False, cfg)
    plan.append(_dwell(plan[-1].q, True, cfg.suction_settle_s))
    plan += _line(kin, plan[-1].q, pick, lifted, True, cfg)
    plan.append(_move(plan[-1].q, q_above_place, True, fast, cfg))
    plan.append(_move(q_above_place, _with_roll(q_above_place, r_place), True, fast, cfg))
    plan += _line(kin, plan[-1].q, above_place, release, True, cfg)
    plan.append(_dwell(plan[-1].q, False, cfg.release_settle_s))
    plan += _line(kin, plan[-1].q, release, above_place, False, cfg)
    return _finish(kin, plan, cfg)


def plan_sweep(kin: ArmKinematics, q_start, start_xyz, stop_xyz,
               cfg: MotionConfig) -> list[Waypoint]:
    """Push an object from start_xyz to stop_xyz with the cup, tool down, low over the table.

    The cup travels `sweep_height_m` above the table (z = 0), from `sweep_backoff_m` behind
    the start point to `sweep_backoff_m` behind the stop point (behind = against the sweep
    direction), so the object's centre ends near stop_xyz. Suction stays off."""
    q_start = np.asarray(q_start, float)
    a, b = np.asarray(start_xyz, float), np.asarray(stop_xyz, float)
    direction = (b - a)[:2]
    length = float(np.linalg.norm(direction))
    if length < 1e-6:
        raise GeometryError("sweep start and stop points coincide")
    back = np.array([*(-direction / length * cfg.sweep_backoff_m), 0.0])
    low = np.array([0.0, 0.0, cfg.sweep_height_m])
    begin, end = a * (1, 1, 0) + back + low, b * (1, 1, 0) + back + low
    q_begin = kin.ik(begin, tool_down=True, q0=_with_roll(q_start, 0.0))
    above_begin, q_above_begin = _above(kin, begin, cfg.approach_height_m, cfg, q_begin)
    plan = [_move(q_start, q_above_begin, False, cfg.travel_speed_rad_s, cfg)]
    plan += _line(kin, q_above_begin, above_begin, begin, False, cfg)
    plan += _line(kin, plan[-1].q, begin, end, False, cfg)
    above_end, _ = _above(kin, end, cfg.approach_height_m, cfg, plan[-1].q)
    plan += _line(kin, plan[-1].q, end, above_end, False, cfg)
    return _finish(kin, plan, cfg)


def plan_reach(kin: ArmKinematics, q_start, target_xyz, cfg: MotionConfig,
               tool_down: bool = False) -> list[Waypoint]:
    """One joint-space move of the tool face to target_xyz (LLARVA-style reaching); no
    return home, whatever cfg.return_home says, since reaching ends at the target."""
    q_start = np.asarray(q_start, float)
    q = kin.ik(target_xyz, tool_down=tool_down, q0=q_start)
    plan = [_move(q_start, q, False, cfg.travel_speed_rad_s, cfg)]
    return _finish(kin, plan, replace(cfg, return_home=False))


def _groups(waypoints: list[Waypoint]) -> list[list[Waypoint]]:
    """Split a plan into groups that each end at a plain (non-via) waypoint."""
    groups, current = [], []
    for wp in waypoints:
        current.append(wp)
        if not wp.via:
            groups.append(current)
            current = []
    if current:
        raise ConfigError("a plan must not end with a via waypoint")
    return groups


def _min_jerk(tau: np.ndarray) -> np.ndarray:
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)


def interpolate(waypoints: list[Waypoint], q_start, dt: float,
                max_speed_rad_s: float | None = None) -> JointTrajectory:
    """Sample the plan every dt seconds (plus the final instant) with min-jerk groups.

    Each group is the piecewise-linear joint path through its waypoints, parametrised by
    cumulative L-inf joint distance and timed by one min-jerk profile over the group's total
    duration; max_speed_rad_s (if given) stretches groups that would exceed it."""
    if dt <= 0:
        raise ConfigError(f"dt must be positive, got {dt}")
    q_prev = np.asarray(q_start, float)
    ts, qs, suction, t0 = [np.zeros(1)], [q_prev[None, :]], [np.zeros(1, bool)], 0.0
    last_suction = False
    for group in _groups(waypoints):
        path = np.vstack([q_prev, *(wp.q for wp in group)])  # (k+1, 5)
        lam = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(path, axis=0)).max(axis=1))])
        duration = sum(wp.duration_s for wp in group)
        if max_speed_rad_s is not None:
            duration = max(duration, MIN_JERK_PEAK * lam[-1] / max_speed_rad_s)
        t_end = t0 + duration
        t = np.arange(math.floor(t0 / dt) + 1, math.floor(t_end / dt + 1e-9) + 1) * dt
        s = _min_jerk((t - t0) / duration) * lam[-1] if duration > 0 else np.full(len(t), 0.0)
        q = np.column_stack([np.interp(s, lam, path[:, j]) for j in range(path.shape[1])])
        ts.append(t)
        qs.append(q.reshape(len(t), path.shape[1]))
        suction.append(np.full(len(t), group[-1].suction))
        q_prev, t0, last_suction = path[-1], t_end, group[-1].suction
    if np.concatenate(ts)[-1] < t0 - 1e-9:  # end exactly on the last waypoint
        ts.append(np.array([t0]))
        qs.append(q_prev[None, :])
        suction.append(np.array([last_suction]))
    return JointTrajectory(np.concatenate(ts), np.vstack(qs), np.concatenate(suction))
