"""Kinematics of the SO-101 desktop arm with a suction-cup tool.

Contract
- Frames: robot base frame, x forward, y left, z up, metres; origin on the table surface
  directly below the shoulder_pan axis. Joint values are radians, in `joint_names` order
  (shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll); the sixth motor
  (gripper, a jaw kept so the bus has servos 1..6) is described by `ArmKinematics.jaw` and is
  not part of `q`.
- The tool frame sits on the suction cup face: its z axis is the tool axis pointing out of
  the cup (straight down, -z of the base, when "tool down"); in a tool-down pose with
  shoulder_pan = wrist_roll = 0 its x axis points forward (+x). Tool yaw = atan2 of the
  tool x axis in the base xy plane; for tool-down poses yaw = wrist_roll - shoulder_pan (a
  positive shoulder_pan turns the arm clockwise seen from above, as in the published model).
- `ik` raises GeometryError when a target is out of reach, below the table, outside the
  joint limits, or the best solution misses by more than `IkConfig.position_tol_m`.

Source of the numbers (single source of truth for sim/arm.py as well):
TheRobotStudio/SO-ARM100, Simulation/SO101/so101_new_calib.urdf (commit 0aee1d0f) for the
joint origins, axes and limits ("new calibration": zero at mid-range, servo ids = motor1..6),
and Simulation/SO101/so101_new_calib.xml for the base frame on the floor. Two edits:
(1) the published base origin lies 38.84 mm behind the shoulder_pan axis; this module moves
the origin under that axis, so the reachable annulus is centred on it; (2) the exported
angles (1.5708, 3.14159, 1e-16 residues) are snapped to exact multiples of pi/2 (differences
< 4e-6 rad). The jaws are replaced by a compact suction head on the wrist_roll axis, cup
face 45 mm from the wrist_roll origin. (The published jaw tip sits 98 mm out; with a tool
that long the +-95 deg wrist_flex limit keeps top-down targets below z = 9 cm, with 45 mm
they reach z = 14 cm, which leaves room for approach heights above objects.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from llara_edge.errors import ConfigError, GeometryError

HALF_PI = math.pi / 2


@dataclass(frozen=True)
class JointSpec:
    """One revolute joint: origin in the parent link frame (URDF convention), axis, limits."""

    name: str
    parent: str
    child: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    axis: tuple[float, float, float]
    lower: float
    upper: float
    servo_id: int


@dataclass(frozen=True)
class ToolSpec:
    """The suction cup: face frame in the last arm link, cup radius for the simulator."""

    parent: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    cup_radius: float


SO101_JOINTS: tuple[JointSpec, ...] = (
    JointSpec("shoulder_pan", "base", "shoulder", (0.0, 0.0, 0.0624), (0.0, math.pi, 0.0),
              (0.0, 0.0, 1.0), -1.91986, 1.91986, 1),
    JointSpec("shoulder_lift", "shoulder", "upper_arm", (-0.0303992, -0.0182778, -0.0542),
              (-HALF_PI, -HALF_PI, 0.0), (0.0, 0.0, 1.0), -1.74533, 1.74533, 2),
    JointSpec("elbow_flex", "upper_arm", "lower_arm", (-0.11257, -0.028, 0.0),
              (0.0, 0.0, HALF_PI), (0.0, 0.0, 1.0), -1.69, 1.69, 3),
    JointSpec("wrist_flex", "lower_arm", "wrist", (-0.1349, 0.0052, 0.0),
              (0.0, 0.0, -HALF_PI), (0.0, 0.0, 1.0), -1.65806, 1.65806, 4),
    JointSpec("wrist_roll", "wrist", "gripper", (0.0, -0.0611, 0.0181),
              (HALF_PI, 0.0, math.pi), (0.0, 0.0, 1.0), -2.79253, 2.79253, 5),
)
SO101_JAW = JointSpec("gripper", "gripper", "jaw", (0.0202, 0.0188, -0.0234),
                      (HALF_PI, 0.0, 0.0), (0.0, 0.0, 1.0), -0.174533, 1.74533, 6)
SO101_TOOL = ToolSpec("gripper", (0.0, 0.0, -0.045), (math.pi, 0.0, 0.0), 0.012)
# Rest pose: tool down (within 0.1 deg), 12 cm in front of the pan axis, 12 cm above the table.
SO101_HOME = (0.0, -0.65, 0.66, 1.56, 0.0)


@dataclass(frozen=True)
class IkConfig:
    """Numerical IK settings (Levenberg-Marquardt, projected onto the joint box)."""

    position_tol_m: float = 0.002
    axis_tol_rad: float = math.radians(0.5)
    yaw_tol_rad: float = math.radians(0.5)
    converged_m: float = 1e-7
    max_iter: int = 60
    damping: float = 1e-3
    orientation_scale_m: float = 0.1  # 1 rad of orientation error weighs like 0.1 m
    max_step_rad: float = 0.4
    min_link_height_m: float = 0.005  # elbow/wrist origins must stay above the table

    def __post_init__(self) -> None:
        if min(self.position_tol_m, self.axis_tol_rad, self.yaw_tol_rad) <= 0:
            raise ConfigError("IK tolerances must be positive")
        if self.max_iter < 1 or self.damping < 0 or self.max_step_rad <= 0:
            raise ConfigError("IK needs max_iter >= 1, damping >= 0, max_step_rad > 0")


def rpy_matrix(rpy: tuple[float, float, float]) -> np.ndarray:
    """URDF fixed-axis roll-pitch-yaw -> 3x3 rotation, R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = (math.cos(r), math.sin(r), math.cos(p), math.sin(p),
                              math.cos(y), math.sin(y))
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: rotation by `angle` rad about unit `axis` (3,) -> 3x3."""
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    k = 1.0 - c
    return np.array([
        [c + x * x * k, x * y * k - z * s, x * z * k + y * s],
        [y * x * k + z * s, c + y * y * k, y * z * k - x * s],
        [z * x * k - y * s, z * y * k + x * s, c + z * z * k],
    ])


def homogeneous(rot: np.ndarray, xyz) -> np.ndarray:
    """4x4 transform from a 3x3 rotation and a translation (3,)."""
    t = np.eye(4)
    t[:3, :3] = rot
    t[:3, 3] = xyz
    return t


def tool_down_rotation(yaw_rad: float) -> np.ndarray:
    """Tool frame orientation with the tool axis along -z and its x axis at `yaw_rad`."""
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


def wrap_angle(a: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True)
class TopDownWorkspace:
    """Annulus (about the shoulder_pan axis) where every point is reachable tool-down.

    Valid for target heights in [z_min, z_max] and azimuths |atan2(y, x)| <= azimuth_max.
    """

    r_min: float
    r_max: float
    azimuth_max: float
    z_min: float
    z_max: float

    def contains(self, x: float, y: float, z: float) -> bool:
        r = math.hypot(x, y)
        return (self.r_min <= r <= self.r_max and self.z_min <= z <= self.z_max
                and abs(math.atan2(y, x)) <= self.azimuth_max)


@dataclass
class _Frames:
    """FK byproducts for one q: link poses, joint origins/axes, tool pose (base frame)."""

    links: list[tuple[np.ndarray, np.ndarray]]  # 5 x (R (3, 3), p (3,)) after each joint
    origins: np.ndarray  # (5, 3) joint origins, m
    axes: np.ndarray  # (5, 3) unit joint axes
    tool: np.ndarray  # (4, 4) tool face pose


# Seeds (shoulder_lift, elbow_flex, wrist_flex) tried after q0; shoulder_pan comes from the
# target azimuth and wrist_roll from q0. They cover near/far and high/low tool-down targets.
_SEEDS_LIFT_ELBOW_WRIST = ((0.3, -0.3, 1.6), (-0.5, 0.6, 1.4), (0.9, -1.0, 1.4))


@dataclass
class ArmKinematics:
    """Serial-chain kinematics built from a joint table (see module docstring)."""

    joints: tuple[JointSpec, ...]
    tool: ToolSpec
    jaw: JointSpec
    home: np.ndarray
    ik_config: IkConfig = field(default_factory=IkConfig)

    def __post_init__(self) -> None:
        self.home = np.asarray(self.home, dtype=float)
        self.lower = np.array([j.lower for j in self.joints])
        self.upper = np.array([j.upper for j in self.joints])
        if self.home.shape != (len(self.joints),):
            raise ConfigError(f"home must have {len(self.joints)} values, got {self.home.shape}")
        if np.any(self.lower >= self.upper) or not self.within_limits(self.home):
            raise ConfigError("joint limits must satisfy lower < upper and contain home")
        self._fixed = [(rpy_matrix(j.rpy), np.asarray(j.xyz, float)) for j in self.joints]
        self._axes = [np.asarray(j.axis, float) / np.linalg.norm(j.axis) for j in self.joints]
        self._tool_fixed = (rpy_matrix(self.tool.rpy), np.asarray(self.tool.xyz, float))
        # Upper bound of the tool's distance from the first joint origin (fast reject).
        self._reach_bound = sum(np.linalg.norm(j.xyz) for j in self.joints[1:]) + float(
            np.linalg.norm(self.tool.xyz))
        self._workspace: TopDownWorkspace | None = None
        # +1 if a positive shoulder_pan turns the arm counter-clockwise seen from above.
        self._pan_sign = float(np.sign((self._fixed[0][0] @ self._axes[0])[2]))

    @classmethod
    def so101(cls, ik_config: IkConfig | None = None) -> ArmKinematics:
        """The SO-101 follower arm with the suction tool (published dimensions)."""
        return cls(SO101_JOINTS, SO101_TOOL, SO101_JAW, np.array(SO101_HOME),
                   ik_config or IkConfig())

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def motors(self) -> tuple[tuple[str, int], ...]:
        """(name, servo id) of every motor on the bus: arm joints, then the gripper."""
        return tuple((j.name, j.servo_id) for j in (*self.joints, self.jaw))

    def within_limits(self, q, tol: float = 1e-9) -> bool:
        q = np.asarray(q, float)
        return bool(np.all(q >= self.lower - tol) and np.all(q <= self.upper + tol))

    def _check_q(self, q) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if q.shape != (len(self.joints),) or not np.all(np.isfinite(q)):
            raise ConfigError(f"q must be {len(self.joints)} finite values, got {q!r}")
        return q

    def _frames(self, q: np.ndarray) -> _Frames:
        rot, pos = np.eye(3), np.zeros(3)
        links, origins, axes = [], [], []
        for (fixed_rot, fixed_xyz), axis, qi in zip(self._fixed, self._axes, q, strict=True):
            pos = pos + rot @ fixed_xyz
            rot = rot @ fixed_rot
            origins.append(pos)
            axes.append(rot @ axis)
            rot = rot @ axis_angle_matrix(axis, qi)
            links.append((rot, pos))
        tool_rot, tool_xyz = self._tool_fixed
        tool = homogeneous(rot @ tool_rot, pos + rot @ tool_xyz)
        return _Frames(links, np.array(origins), np.array(axes), tool)

    def fk(self, q) -> np.ndarray:
        """4x4 pose of the tool face (suction cup) in the base frame for joint values q (5,)."""
        return self._frames(self._check_q(q)).tool

    def fk_all(self, q) -> list[np.ndarray]:
        """4x4 poses of the 5 link frames (each after its joint), then the tool face."""
        f = self._frames(self._check_q(q))
        return [*(homogeneous(r, p) for r, p in f.links), f.tool]

    def jacobian(self, q) -> np.ndarray:
        """(6, 5) geometric Jacobian of the tool face: rows vx vy vz (m/rad), wx wy wz."""
        f = self._frames(self._check_q(q))
        lin = np.cross(f.axes, f.tool[:3, 3] - f.origins)
        return np.vstack([lin.T, f.axes.T])

    def tool_yaw(self, q) -> float:
        """Yaw (rad) of the tool x axis in the base xy plane, meaningful for tool-down poses."""
        r = self.fk(q)[:3, :3]
        return math.atan2(r[1, 0], r[0, 0])

    # ---- inverse kinematics -------------------------------------------------------------

    def _residual(self, f: _Frames, target: np.ndarray, x_goal: np.ndarray | None,
                  tool_down: bool) -> tuple[np.ndarray, np.ndarray]:
        """Stacked error (k,) and its Jacobian (k, 5): position, tool z axis, tool x axis."""
        p, rot = f.tool[:3, 3], f.tool[:3, :3]
        errs = [p - target]
        jacs = [np.cross(f.axes, p - f.origins).T]
        s = self.ik_config.orientation_scale_m
        goals = [(2, np.array([0.0, 0.0, -1.0]))] if tool_down else []
        if x_goal is not None:
            goals.append((0, x_goal))
        for col, goal in goals:
            v = rot[:, col]
            errs.append(s * (v - goal))
            jacs.append(s * np.cross(f.axes, v).T)  # d v / d q_i = axis_i x v
        return np.concatenate(errs), np.vstack(jacs)

    def _solve_from(self, seed: np.ndarray, target: np.ndarray, x_goal: np.ndarray | None,
                    tool_down: bool) -> np.ndarray:
        """Levenberg-Marquardt from one seed, projected onto the joint box after every step.

        A step that does not lower the error is rejected and the damping raised; the solve
        ends when converged, when the damping explodes, or after 4 accepted steps that shrink
        the error by < 2 % (stuck at a limit: another seed is the cheaper way out).
        """
        cfg = self.ik_config
        q = np.clip(seed, self.lower, self.upper)
        err, jac = self._residual(self._frames(q), target, x_goal, tool_down)
        sq, lam, stalled = float(err @ err), cfg.damping, 0
        eye = np.eye(len(q))
        for _ in range(cfg.max_iter):
            if sq < cfg.converged_m**2 or stalled >= 4 or lam > 1.0:
                break
            step = np.linalg.solve(jac.T @ jac + lam**2 * eye, -jac.T @ err)
            norm = float(np.max(np.abs(step)))
            if norm > cfg.max_step_rad:
                step *= cfg.max_step_rad / norm
            q_new = np.clip(q + step, self.lower, self.upper)
            err_new, jac_new = self._residual(self._frames(q_new), target, x_goal, tool_down)
            sq_new = float(err_new @ err_new)
            if sq_new >= sq:
                lam *= 4.0
                continue
            stalled = stalled + 1 if sq_new > 0.98 * sq else 0
            q, err, jac, sq, lam = q_new, err_new, jac_new, sq_new, max(lam / 3.0, 1e-6)
        return q

    def _errors(self, q: np.ndarray, target: np.ndarray, yaw: float | None,
                tool_down: bool) -> tuple[float, float, float, float]:
        """(position miss m, tool-axis error rad, yaw error rad, lowest link height m)."""
        f = self._frames(q)
        miss = float(np.linalg.norm(f.tool[:3, 3] - target))
        axis_err = math.acos(min(1.0, -f.tool[2, 2])) if tool_down else 0.0
        yaw_err = 0.0
        if yaw is not None:
            yaw_err = abs(wrap_angle(math.atan2(f.tool[1, 0], f.tool[0, 0]) - yaw))
        return miss, axis_err, yaw_err, float(np.min(f.origins[2:, 2]))

    def _seeds(self, target: np.ndarray, q0: np.ndarray | None,
               tool_down: bool) -> list[np.ndarray]:
        """q0 (or, position-only, home) first, then pan-towards-target generic seeds."""
        roll = 0.0 if q0 is None else float(q0[4])
        pan = self._pan_sign * math.atan2(target[1], target[0])
        first = [q0] if q0 is not None else ([] if tool_down else [self.home])
        return first + [np.array([pan, *lew, roll]) for lew in _SEEDS_LIFT_ELBOW_WRIST]

    def ik(self, position, yaw_rad: float | None = None, tool_down: bool = True,
           q0=None) -> np.ndarray:
        """Joint values (5,) placing the tool face at `position` (m, base frame).

        tool_down: tool axis straight down (-z); yaw_rad then fixes the tool yaw (None: the
        wrist_roll of q0, or 0, is kept). Without tool_down only the position is solved,
        starting from q0 (or home) so the redundant joints stay near it. Seeds are tried in
        order (q0 first); the first solution within tolerance wins (every iterate is clipped
        to the joint limits, and elbow/wrist must stay above the table). Raises
        GeometryError otherwise.
        """
        target = np.asarray(position, dtype=float)
        if target.shape != (3,) or not np.all(np.isfinite(target)):
            raise ConfigError(f"position must be 3 finite values (m), got {position!r}")
        if yaw_rad is not None and not tool_down:
            raise ConfigError("yaw_rad is only defined for tool-down targets")
        q0 = None if q0 is None else self._check_q(q0)
        self._reject_obvious(target)
        x_goal = None if yaw_rad is None else tool_down_rotation(yaw_rad)[:, 0]
        seeds = self._seeds(target, q0, tool_down)
        cfg, best = self.ik_config, math.inf
        for seed in seeds:
            q = self._solve_from(seed, target, x_goal, tool_down)
            miss, axis_err, yaw_err, low = self._errors(q, target, yaw_rad, tool_down)
            ok_pose = axis_err <= cfg.axis_tol_rad and yaw_err <= cfg.yaw_tol_rad
            if miss <= cfg.position_tol_m and ok_pose and low >= cfg.min_link_height_m:
                return q
            best = min(best, miss + axis_err * cfg.orientation_scale_m)
        raise GeometryError(
            f"no IK solution for tool {'down ' if tool_down else ''}at "
            f"({target[0]:.3f}, {target[1]:.3f}, {target[2]:.3f}) m"
            f"{'' if yaw_rad is None else f', yaw {math.degrees(yaw_rad):.1f} deg'}: the best "
            f"attempt within joint limits misses by {best * 1000:.1f} mm (tilt counted at "
            f"{cfg.orientation_scale_m * 1000:.0f} mm/rad)")

    def _reject_obvious(self, target: np.ndarray) -> None:
        """Fast GeometryError for targets no joint values can reach."""
        if target[2] < 0.0:
            raise GeometryError(f"target z = {target[2]:.4f} m is below the table surface")
        shoulder = self._fixed[0][1]
        dist = float(np.linalg.norm(target - shoulder))
        if dist > self._reach_bound:
            raise GeometryError(
                f"target ({target[0]:.3f}, {target[1]:.3f}, {target[2]:.3f}) m is {dist:.3f} m "
                f"from the shoulder, beyond the arm's reach ({self._reach_bound:.3f} m)")

    # ---- workspace -----------------------------------------------------------------------

    def reachable_top_down(self, x: float, y: float, z: float) -> bool:
        """True if the tool face can touch (x, y, z) pointing straight down (yaw free)."""
        try:
            self.ik((x, y, z), tool_down=True)
        except GeometryError:
            return False
        return True

    def top_down_workspace(self) -> TopDownWorkspace:
        """Annulus of top-down targets for z in [0, 0.08] m, measured once with `ik`."""
        if self._workspace is None:
            self._workspace = measure_top_down_workspace(self)
        return self._workspace


def _radial_interval(kin: ArmKinematics, azimuth: float, z: float, r_hint: float,
                     resolution: float) -> tuple[float, float]:
    """Reachable [r_lo, r_hi] along one ray, by bisection from a reachable r_hint."""
    c, s = math.cos(azimuth), math.sin(azimuth)

    def ok(r: float) -> bool:
        return kin.reachable_top_down(r * c, r * s, z)

    if not ok(r_hint):
        raise GeometryError(f"workspace probe: r = {r_hint} m at z = {z} m is not reachable")
    edges = []
    for far in (0.0, kin._reach_bound):
        good, bad = r_hint, far
        while abs(good - bad) > resolution:
            mid = 0.5 * (good + bad)
            good, bad = (mid, bad) if ok(mid) else (good, mid)
        edges.append(good)
    return edges[0], edges[1]


def measure_top_down_workspace(kin: ArmKinematics, z_range=(0.0, 0.08), r_hint: float = 0.15,
                               resolution: float = 5e-4, margin: float = 2e-3) -> TopDownWorkspace:
    """Intersect the reachable radial intervals over heights and azimuths; shrink by margin.

    Azimuths sampled: 0 and +-azimuth_max, where azimuth_max keeps 0.05 rad of
    shoulder_pan travel in reserve; heights: 5 levels spanning z_range. The radial
    reachable set is assumed to be one interval per ray (true for this arm; tests probe it).
    """
    pan_span = min(abs(kin.lower[0]), abs(kin.upper[0])) - 0.05
    azimuths = (0.0, pan_span, -pan_span)
    lo, hi = 0.0, math.inf
    for z in np.linspace(z_range[0], z_range[1], 5):
        for az in azimuths:
            r_lo, r_hi = _radial_interval(kin, az, float(z), r_hint, resolution)
            lo, hi = max(lo, r_lo), min(hi, r_hi)
    if lo + 2 * margin >= hi:
        raise GeometryError("no top-down annulus is reachable over the whole height range")
    return TopDownWorkspace(float(lo + margin), float(hi - margin), float(pan_span),
                            float(z_range[0]), float(z_range[1]))
