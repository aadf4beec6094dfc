"""Kinematics of the SO-101 desktop arm with a suction-cup tool.

Contract
- Frames: robot base frame, x forward, y left, z up, metres; origin on the table surface
  directly below the shoulder_pan axis. Joint values are radians, in `joint_names` order
  (shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll); the sixth motor
  (gripper, a jaw kept so the bus has servos 1..6) is described by `ArmKinematics.jaw` and is
  not part of `q`.
- The tool frame sits on the suction cup face: its z axis is the tool axis pointing out of
  the cup (straight down, -z of the base, when "tool down"), its x axis points forward when
  every joint is zero except wrist_flex. Tool yaw = atan2 of the tool x axis in the base
  xy plane; for tool-down poses yaw = -shoulder_pan - wrist_roll (both joints turn clockwise
  seen from above for positive values, as in the published model).
- `ik` raises GeometryError when a target is out of reach, below the table, outside the
  joint limits, or the best solution misses by more than `IkConfig.position_tol_m`.

Source of the numbers (single source of truth for sim/arm.py as well):
TheRobotStudio/SO-ARM100, Simulation/SO101/so101_new_calib.urdf (commit 0aee1d0f) for the
joint origins, axes and limits ("new calibration": zero at mid-range, servo ids = motor1..6),
and Simulation/SO101/so101_new_calib.xml for the base frame on the floor. Two edits:
(1) the published base origin lies 38.84 mm behind the shoulder_pan axis; this module moves
the origin under that axis, so the reachable annulus is centred on it; (2) the exported
angles (1.5708, 3.14159, 1e-16 residues) are snapped to exact multiples of pi/2 (differences
< 4e-6 rad). The jaws are replaced by a suction cup on the wrist_roll axis whose face sits
98.13 mm from the wrist_roll origin, the depth of the published `gripperframe` jaw tip.
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
SO101_TOOL = ToolSpec("gripper", (0.0, 0.0, -0.0981274), (math.pi, 0.0, 0.0), 0.012)
# Rest pose: tool down, folded above the table close to the base (x 0.12 m, z 0.18 m).
SO101_HOME = (0.0, -1.2, 0.9, 1.3, 0.0)


@dataclass(frozen=True)
class IkConfig:
    """Numerical IK settings (damped least squares, projected onto the joint box)."""

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


@dataclass
class _Frames:
    """FK byproducts for one q: joint origins/axes in the base frame and the tool pose."""

    origins: np.ndarray  # (5, 3) joint origins, m
    axes: np.ndarray  # (5, 3) unit joint axes
    tool: np.ndarray  # (4, 4) tool face pose


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
        self._fixed = [homogeneous(rpy_matrix(j.rpy), j.xyz) for j in self.joints]
        self._axes = [np.asarray(j.axis, float) / np.linalg.norm(j.axis) for j in self.joints]
        self._tool_fixed = homogeneous(rpy_matrix(self.tool.rpy), self.tool.xyz)
        self._workspace = None

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
        """(name, servo id) of every motor on the bus, arm joints then the gripper."""
        return tuple((j.name, j.servo_id) for j in (*self.joints, self.jaw))

    def within_limits(self, q, tol: float = 1e-9) -> bool:
        q = np.asarray(q, float)
        return bool(np.all(q >= self.lower - tol) and np.all(q <= self.upper + tol))

    def _check_q(self, q) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if q.shape != (len(self.joints),):
            raise ConfigError(f"q must have shape ({len(self.joints)},), got {q.shape}")
        return q

    def _frames(self, q: np.ndarray) -> _Frames:
        t = np.eye(4)
        origins, axes, all_t = [], [], []
        for fixed, axis, qi in zip(self._fixed, self._axes, q):
            t = t @ fixed
            origins.append(t[:3, 3].copy())
            axes.append(t[:3, :3] @ axis)
            t = t @ homogeneous(axis_angle_matrix(axis, qi), (0.0, 0.0, 0.0))
            all_t.append(t)
        self._last_link_poses = all_t
        return _Frames(np.array(origins), np.array(axes), t @ self._tool_fixed)

    def fk(self, q) -> np.ndarray:
        """4x4 pose of the tool face (suction cup) in the base frame for joint values q (5,)."""
        return self._frames(self._check_q(q)).tool

    def fk_all(self, q) -> list[np.ndarray]:
        """4x4 poses of every link frame (after its joint) followed by the tool face."""
        frames = self._frames(self._check_q(q))
        return [*self._last_link_poses, frames.tool]

    def jacobian(self, q) -> np.ndarray:
        """(6, 5) geometric Jacobian of the tool face: rows vx vy vz (m/rad), wx wy wz."""
        f = self._frames(self._check_q(q))
        lin = np.cross(f.axes, f.tool[:3, 3] - f.origins)
        return np.vstack([lin.T, f.axes.T])

    def tool_yaw(self, q) -> float:
        """Yaw (rad) of the tool x axis in the base xy plane, meaningful for tool-down poses."""
        r = self.fk(q)[:3, :3]
        return math.atan2(r[1, 0], r[0, 0])

    def ik(self, position, yaw_rad: float | None = None, tool_down: bool = True,
           q0=None) -> np.ndarray:
        """Joint values (5,) placing the tool face at `position` (m, base frame).

        tool_down: tool axis straight down; yaw_rad then fixes the tool yaw (None: wrist_roll
        keeps the seed's value). Without tool_down only the position is solved, staying near
        q0. Raises GeometryError when no seed reaches the target within tolerance.
        """
        from llara_edge.geometry.ik_solver import solve_ik

        return solve_ik(self, position, yaw_rad, tool_down, q0)

    def reachable_top_down(self, x: float, y: float, z: float) -> bool:
        """True if the tool can touch (x, y, z) pointing straight down (any yaw)."""
        try:
            self.ik((x, y, z), tool_down=True)
        except GeometryError:
            return False
        return True

    def top_down_workspace(self):
        """Measured annulus of top-down targets for z in [0, 0.08] m (cached)."""
        if self._workspace is None:
            from llara_edge.geometry.ik_solver import measure_top_down_workspace

            self._workspace = measure_top_down_workspace(self)
        return self._workspace
