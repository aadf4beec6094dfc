"""Robot configuration: bus, joint calibration and limits, tool, workspace, hand-eye, camera.

Contract:
- `RobotConfig` (dataclasses validated in `__post_init__`) is read from and written to TOML
  (`RobotConfig.load(path)`, `.save(path)`, atomic). `RobotConfig.default()` is the bundled
  `so101_sim.toml`: an SO-101 with a suction tool on the simulator's virtual Feetech bus.
- Units: radians, metres, seconds. Joint values are kinematic angles (kinematics.py, 0 at
  the model's zero pose). A motor's angle relative to its centre step is
  `servo_rad = direction * q + offset_rad`; `JointCalibration.to_servo` / `from_servo`.
- `joints` lists every motor on the bus in kinematic order: the arm joints of the
  kinematics model, then the tool motor (the SO-101's jaw, servo 6). The tool motor carries
  the suction command in the simulator: a goal nearer `closed_rad` than `open_rad` = suction on
  (on a jaw gripper: closed = grasp).
- `hand_eye` is T_base_cam: RealSense camera frame (x right, y down, z forward) -> robot base
  frame (x forward, y left, z up), as written by `llara-edge calibrate`; `simulated = true`
  marks one from the simulator (the bundled config's ground truth, a simulator calibration),
  which a real arm refuses (robot/preflight.py).
- `workspace` bounds the tool tip (base frame); every link origin must also stay above
  `min_link_height_m` (the table is z = 0).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from llara_edge.errors import ConfigError
from llara_edge.hw_drivers.base import BusConfig
from llara_edge.hw_drivers.camera_base import CameraConfig
from llara_edge.robot import toml_io
from llara_edge.robot.tables import Problems, build
from llara_edge.robot.toml_lines import key_lines

VIRTUAL_PORT = "virtual"  # bus.port value: a simulated bus on a pty (the simulator)
BUNDLED_CONFIG = "so101_sim.toml"
SIM_CAMERAS = ("sim", "software-realsense")  # camera kinds that render the simulator


@dataclass(frozen=True)
class BusSection:
    """Servo bus: kind ("feetech" | "dynamixel"), serial port or "virtual", line settings."""

    kind: str = "feetech"
    port: str = VIRTUAL_PORT
    model: str = ""  # empty: the backend's default model (STS3215 for feetech)
    baudrate: int = 1_000_000
    timeout_s: float = 0.1  # per reply and attempt
    retries: int = 2

    def __post_init__(self) -> None:
        self.bus_config()  # BusConfig validates kind, baudrate, timeout, retries

    @property
    def is_virtual(self) -> bool:
        return self.port == VIRTUAL_PORT

    def bus_config(self, port: str | None = None) -> BusConfig:
        """The driver's BusConfig (`port` overrides, e.g. the pty of a virtual bus)."""
        return BusConfig(kind=self.kind, port=port or ("" if self.is_virtual else self.port),
                         model=self.model, baudrate=self.baudrate, timeout_s=self.timeout_s,
                         retries=self.retries)


@dataclass(frozen=True)
class JointCalibration:
    """One motor: name (the kinematics' joint name), servo id, calibration, limits."""

    name: str
    id: int
    lower_rad: float
    upper_rad: float
    direction: int = 1  # +1: servo steps grow with the joint angle; -1: they shrink
    offset_rad: float = 0.0  # servo angle (rad from its centre step) at joint angle 0
    max_speed_rad_s: float = 3.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("joint name must be set")
        if not 0 <= self.id <= 253:
            raise ConfigError(f"joint {self.name}: servo id must be in [0, 253], got {self.id}")
        if self.direction not in (1, -1):
            raise ConfigError(f"joint {self.name}: direction must be +1 or -1")
        if not self.lower_rad < self.upper_rad:
            raise ConfigError(f"joint {self.name}: lower_rad must be < upper_rad")
        for value in (self.to_servo(self.lower_rad), self.to_servo(self.upper_rad)):
            if abs(value) >= math.pi:
                raise ConfigError(f"joint {self.name}: limits + offset reach {value:.3f} rad, "
                                  "beyond half a servo turn from its centre")
        if not 0 < self.max_speed_rad_s <= 20:
            raise ConfigError(f"joint {self.name}: max_speed_rad_s must be in (0, 20]")

    def to_servo(self, q: float) -> float:
        return self.direction * q + self.offset_rad

    def from_servo(self, servo_rad: float) -> float:
        return (servo_rad - self.offset_rad) * self.direction


@dataclass(frozen=True)
class ToolSection:
    """End effector; its motor (a `joints` entry) carries the grip/suction command."""

    kind: str = "suction"
    motor: str = "gripper"
    open_rad: float = 1.0
    closed_rad: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("suction", "gripper"):
            raise ConfigError(f"tool kind must be 'suction' or 'gripper', got {self.kind!r}")
        if self.open_rad == self.closed_rad:
            raise ConfigError("tool open_rad and closed_rad must differ")

    def goal(self, grip: bool) -> float:
        return self.closed_rad if grip else self.open_rad

    def is_gripping(self, q: float) -> bool:
        """True when a tool-motor angle lies nearer the closed than the open position."""
        return abs(q - self.closed_rad) < abs(q - self.open_rad)


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box (base frame, m) the tool tip must stay in."""

    min: tuple[float, float, float] = (-0.05, -0.35, -0.002)
    max: tuple[float, float, float] = (0.45, 0.35, 0.30)
    min_link_height_m: float = 0.0  # every joint origin after the first stays above this

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.min, float), np.asarray(self.max, float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
            raise ConfigError(f"workspace needs min < max on x, y, z; got {self.min} {self.max}")
        object.__setattr__(self, "min", tuple(float(v) for v in lo))
        object.__setattr__(self, "max", tuple(float(v) for v in hi))

    def contains(self, xyz, tol: float = 0.0) -> bool:
        p = np.asarray(xyz, float)
        return bool(np.all(p >= np.asarray(self.min) - tol) and
                    np.all(p <= np.asarray(self.max) + tol))


@dataclass(frozen=True)
class HandEye:
    """T_base_cam as rotation (3x3) and translation (m), with the calibration's report."""

    rotation: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                                                        (0.0, 0.0, 1.0))
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rms_residual_mm: float | None = None
    points: int | None = None
    source: str = ""
    simulated: bool = False  # fitted in (or taken from) the simulator: never for a real arm

    def __post_init__(self) -> None:
        rot, t = np.asarray(self.rotation, float), np.asarray(self.translation, float)
        if rot.shape != (3, 3) or t.shape != (3,) or not np.all(np.isfinite(rot)):
            raise ConfigError("hand_eye needs a 3x3 rotation and a 3-vector translation")
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6) or np.linalg.det(rot) < 0:
            raise ConfigError("hand_eye.rotation is not a proper rotation matrix")
        object.__setattr__(self, "rotation", tuple(tuple(float(v) for v in r) for r in rot))
        object.__setattr__(self, "translation", tuple(float(v) for v in t))

    @property
    def matrix(self) -> np.ndarray:
        """(4, 4) T_base_cam."""
        T = np.eye(4)
        T[:3, :3] = self.rotation
        T[:3, 3] = self.translation
        return T

    @classmethod
    def from_matrix(cls, T: np.ndarray, **report) -> HandEye:
        T = np.asarray(T, float)
        return cls(tuple(map(tuple, T[:3, :3])), tuple(T[:3, 3]), **report)


@dataclass(frozen=True)
class SafetySection:
    """Timing and fault policy of the control loop (seconds, radians)."""

    setpoint_dt_s: float = 0.02  # servo goals are written at 1 / setpoint_dt_s Hz
    policy_deadline_s: float = 60.0  # the watchdog holds the arm if a decision takes longer
    setpoint_deadline_s: float = 1.0  # ... or if one setpoint (write + read back) stalls
    max_tracking_error_rad: float = 0.35  # present vs goal, beyond: collision or stall
    settle_s: float = 0.6  # wait after a primitive before the next frame
    max_consecutive_faults: int = 3  # bus faults in a row before the run stops
    torque_off_on_stop: bool = False  # after a stop: hold, then release the motors
    stop_grace_s: float = 0.1  # the watchdog holds if the loop has not stopped by then

    def __post_init__(self) -> None:
        if not 0.001 <= self.setpoint_dt_s <= 0.5:
            raise ConfigError("setpoint_dt_s must be in [0.001, 0.5]")
        positive = (self.policy_deadline_s, self.setpoint_deadline_s,
                    self.max_tracking_error_rad, self.stop_grace_s)
        if min(positive) <= 0 or self.settle_s < 0:
            raise ConfigError("safety deadlines and tolerances must be positive")
        if self.max_consecutive_faults < 1:
            raise ConfigError("max_consecutive_faults must be >= 1")


def _camera_default() -> CameraConfig:
    return CameraConfig(kind="sim", width=320, height=240)


@dataclass(frozen=True)
class RobotConfig:
    """Everything the runtime needs to know about one robot (see the module docstring)."""

    name: str = "so101"
    kinematics: str = "so101"
    bus: BusSection = field(default_factory=BusSection)
    joints: tuple[JointCalibration, ...] = ()
    tool: ToolSection = field(default_factory=ToolSection)
    workspace: WorkspaceBox = field(default_factory=WorkspaceBox)
    hand_eye: HandEye = field(default_factory=HandEye)
    camera: CameraConfig = field(default_factory=_camera_default)
    safety: SafetySection = field(default_factory=SafetySection)

    def __post_init__(self) -> None:
        names = [j.name for j in self.joints]
        ids = [j.id for j in self.joints]
        if len(self.joints) < 2:
            raise ConfigError("a robot needs its arm joints and the tool motor in `joints`")
        if len(set(names)) != len(names) or len(set(ids)) != len(ids):
            raise ConfigError(f"joint names and servo ids must be unique: {names} {ids}")
        if names[-1] != self.tool.motor:
            raise ConfigError(f"the last joint must be the tool motor {self.tool.motor!r}, "
                              f"got {names[-1]!r}")
        tool = self.joints[-1]
        for value in (self.tool.open_rad, self.tool.closed_rad):
            if not tool.lower_rad <= value <= tool.upper_rad:
                raise ConfigError(f"tool position {value} rad is outside the {tool.name} limits")

    # -- views
    @property
    def arm_joints(self) -> tuple[JointCalibration, ...]:
        return self.joints[:-1]

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(j.id for j in self.joints)

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower_rad for j in self.joints])

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper_rad for j in self.joints])

    @property
    def max_speed(self) -> np.ndarray:
        return np.array([j.max_speed_rad_s for j in self.joints])

    def replace(self, **changes) -> RobotConfig:
        return dataclasses.replace(self, **changes)

    # -- TOML
    @classmethod
    def from_dict(cls, data: dict, source: str = "robot config",
                  lines: dict[tuple, int] | None = None) -> RobotConfig:
        """Strict: every unknown table or key (with the nearest valid name), missing key and
        mistyped value is reported at once in one ConfigError (robot/tables.py); `lines`
        (toml_lines.key_lines of the text) adds the line of each."""
        problems = Problems(source, lines)
        cfg = build(cls, {"name": "robot", **data} if isinstance(data, dict) else data, (),
                    problems)
        problems.raise_if_any()
        return cfg

    def to_dict(self) -> dict:
        return {"name": self.name, "kinematics": self.kinematics,
                "bus": dataclasses.asdict(self.bus),
                "joints": [dataclasses.asdict(j) for j in self.joints],
                "tool": dataclasses.asdict(self.tool),
                "workspace": dataclasses.asdict(self.workspace),
                "hand_eye": dataclasses.asdict(self.hand_eye),
                "camera": _camera_dict(self.camera),
                "safety": dataclasses.asdict(self.safety)}

    @classmethod
    def load(cls, path: str | Path) -> RobotConfig:
        """The config of a TOML file (ConfigError naming the file, and the line where known)."""
        text = toml_io.read_text(path)
        source = f"robot config {path}"
        return cls.from_dict(toml_io.loads(text, source), source, key_lines(text))

    def save(self, path: str | Path) -> Path:
        """Write the config as TOML atomically (temporary file + rename)."""
        header = (f"llara-edge robot config: {self.name}\n"
                  "Units: radians, metres, seconds. See docs/robot.md.")
        return toml_io.write_atomic(path, toml_io.dumps(self.to_dict(), header, _COMMENTS))

    @classmethod
    def default(cls) -> RobotConfig:
        """The bundled SO-101 simulator config (so101_sim.toml)."""
        text = resources.files("llara_edge.robot").joinpath(BUNDLED_CONFIG).read_text()
        source = f"robot config {BUNDLED_CONFIG}"
        return cls.from_dict(toml_io.loads(text, source), source, key_lines(text))


def _camera_dict(camera: CameraConfig) -> dict:
    """The camera fields that differ from CameraConfig's defaults (plus kind and size), so a
    saved config keeps loading when the camera config gains fields."""
    default = CameraConfig()
    keep = ("kind", "width", "height")
    return {f.name: getattr(camera, f.name) for f in dataclasses.fields(camera)
            if f.name in keep or getattr(camera, f.name) != getattr(default, f.name)}


_COMMENTS = {
    "bus": 'servo bus; port = "virtual": a simulated bus on a pty (the simulator)',
    "tool": "the tool motor's goal: nearer closed_rad = suction on / jaw closed",
    "workspace": "box the tool tip must stay in (base frame, m)",
    "hand_eye": "T_base_cam: RealSense camera frame -> robot base frame (llara-edge calibrate)",
    "camera": "llara_edge.hw_drivers.camera_base.CameraConfig",
    "safety": "loop timing and fault policy",
}
