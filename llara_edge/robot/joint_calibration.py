"""Guided joint calibration of a real arm: offsets from a reference pose, ranges from a sweep.

Contract:
- `calibrate_joints(cfg, bus, ask, sweep_done)` switches torque OFF on every motor of
  `cfg.joints`, then (1) `ask(REFERENCE_POSE_PROMPT)` returns once the operator holds the arm
  in the kinematic zero pose; one sync read of Present_Position gives each motor's servo
  angle there, which is its new `offset_rad` (`servo_rad = direction * q + offset_rad` at
  q = 0; the configured `direction` is kept); (2) `tell(SWEEP_PROMPT)`, then present
  positions are sampled every `SweepConfig.period_s` until `sweep_done()` is true (polled
  after each sample: the CLI's `EnterKey` turns true when the operator presses Enter, a test
  moves the arm one pose per call); each joint's min/max is converted to joint radians with
  the new calibration.
- Refusals (nothing is returned, so nothing is written): a failed read (`DeviceError`), a
  joint whose measured range is below `SweepConfig.min_range_rad` or whose position jumped
  by more than half a turn between two samples (`ConfigError`), or an offset with which the
  configured limits leave the servo's step range (`JointCalibration.__post_init__`, and
  `RobotConfig.__post_init__` for the whole config, re-raised as `ConfigError`).
- Configured software limits beyond the measured physical range give one warning per joint
  (`JointCalibrationResult.warnings`; differences below `SweepConfig.tolerance_rad` are
  ignored); with `tighten=True` such limits become the measured range shrunk by
  `SweepConfig.margin_rad` at each end (never widened).
- The result's `config` is the calibrated `RobotConfig`; saving it (atomic) is the caller's.
Units: radians, seconds; servo angles are radians from the servo's centre step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llara_drivers.base import MotorBus
from llara_edge.errors import ConfigError, DeviceError
from llara_edge.robot.config import JointCalibration, RobotConfig

# The kinematic zero pose (SO-101 "new calibration" URDF, geometry/kinematics.py: every joint
# at mid-range; forward kinematics puts the elbow 0.23 m above the table and the cup face
# 0.30 m in front of the pan axis at the same height).
REFERENCE_POSE_PROMPT = (
    "Torque is OFF. Put the arm in the reference (zero) pose and hold it still:\n"
    "  shoulder_pan  facing straight forward (centre of its range)\n"
    "  shoulder_lift upper arm vertical (leaning ~14 deg forward, elbow above the shoulder)\n"
    "  elbow_flex    forearm horizontal, pointing forward\n"
    "  wrist_flex    wrist straight, in line with the forearm (tool pointing forward)\n"
    "  wrist_roll    centre of its range (tool/jaw not rolled)\n"
    "  gripper       jaw closed\n"
    "then press Enter: ")
SWEEP_PROMPT = ("Sampling: move EVERY joint slowly through its whole range (to each end "
                "stop, one joint after the other), then press Enter.")


@dataclass(frozen=True)
class SweepConfig:
    """Sampling of the range sweep and the acceptance thresholds (rad, s)."""

    rate_hz: float = 30.0  # present-position samples per second during the sweep
    min_range_rad: float = math.radians(5.0)  # a joint that moved less did not move
    margin_rad: float = math.radians(2.0)  # --tighten-limits: keep this far from an end stop
    tolerance_rad: float = math.radians(0.5)  # limits beyond the range by less: no warning
    # (a few 4096-step encoder steps of 0.088 deg: the sweep cannot hit a limit exactly)

    def __post_init__(self) -> None:
        if not 1.0 <= self.rate_hz <= 200.0:
            raise ConfigError("sweep rate_hz must be in [1, 200]")
        if self.margin_rad < 0 or self.min_range_rad <= 2 * self.margin_rad:
            raise ConfigError("sweep needs margin_rad >= 0 and min_range_rad > 2 * margin_rad")
        if self.tolerance_rad < 0:
            raise ConfigError("sweep tolerance_rad must be >= 0")

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz


@dataclass(frozen=True)
class JointReport:
    """One motor's calibration: offsets (servo rad), measured range and limits (joint rad)."""

    name: str
    direction: int
    old_offset_rad: float
    new_offset_rad: float
    measured_min_rad: float
    measured_max_rad: float
    lower_rad: float
    upper_rad: float


@dataclass(frozen=True)
class JointCalibrationResult:
    config: RobotConfig
    joints: tuple[JointReport, ...]
    warnings: tuple[str, ...]
    samples: int  # present-position reads of the sweep


def read_servo_rad(bus: MotorBus, ids: tuple[int, ...]) -> np.ndarray:
    """(n,) servo angles (rad from the centre step), one sync read; DeviceError on failure."""
    try:
        rad = bus.read_positions(ids)
    except DeviceError as exc:
        raise DeviceError(f"joint calibration: cannot read present positions: {exc}") from exc
    return np.array([rad[sid] for sid in ids], float)


def with_offsets(cfg: RobotConfig, servo_rad: np.ndarray) -> tuple[JointCalibration, ...]:
    """Every joint with offset_rad = its servo angle in the reference pose (q = 0)."""
    out = []
    for joint, offset in zip(cfg.joints, servo_rad, strict=True):
        try:
            out.append(dataclasses.replace(joint, offset_rad=float(offset)))
        except ConfigError as exc:
            raise ConfigError(f"joint calibration refused: offset {offset:.3f} rad: {exc}"
                              ) from exc
    return tuple(out)


def record_range(read: Callable[[], np.ndarray], done: Callable[[], bool], sweep: SweepConfig,
                 names: tuple[str, ...], sleep: Callable[[float], None] = time.sleep
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Sample `read()` ((n,) servo rad of the motors `names`) until `done()`; returns
    (min, max, samples)."""
    last = read()
    lo, hi, samples = last.copy(), last.copy(), 1
    while not done():
        sleep(sweep.period_s)
        now = read()
        jumped = np.abs(now - last) > math.pi
        if np.any(jumped):
            raise ConfigError(f"joint calibration refused: {names[int(np.argmax(jumped))]} "
                              "jumped more than half a turn between two samples (its position "
                              "wrapped past the servo's step range: re-centre its horn)")
        lo, hi, last, samples = np.minimum(lo, now), np.maximum(hi, now), now, samples + 1
    return lo, hi, samples


def apply_range(joint: JointCalibration, old_offset: float, servo_lo: float, servo_hi: float,
                sweep: SweepConfig, tighten: bool) -> tuple[JointCalibration, JointReport,
                                                            str | None]:
    """Measured servo range -> joint range; checks it, warns on or tightens the limits."""
    q_min, q_max = sorted((joint.from_servo(servo_lo), joint.from_servo(servo_hi)))
    if q_max - q_min < sweep.min_range_rad:
        raise ConfigError(f"joint calibration refused: {joint.name} did not move during the "
                          f"range sweep ({math.degrees(q_max - q_min):.1f} deg < "
                          f"{math.degrees(sweep.min_range_rad):.1f} deg)")
    warning = None
    tol = sweep.tolerance_rad
    if joint.lower_rad < q_min - tol or joint.upper_rad > q_max + tol:
        warning = (f"{joint.name}: software limits [{joint.lower_rad:.3f}, {joint.upper_rad:.3f}]"
                   f" rad exceed the measured physical range [{q_min:.3f}, {q_max:.3f}] rad")
        if tighten:
            lower = max(joint.lower_rad, q_min + sweep.margin_rad)
            upper = min(joint.upper_rad, q_max - sweep.margin_rad)
            try:
                joint = dataclasses.replace(joint, lower_rad=lower, upper_rad=upper)
            except ConfigError as exc:
                raise ConfigError(f"joint calibration refused: tightened limits: {exc}"
                                  ) from exc
            warning += f"; tightened to [{lower:.3f}, {upper:.3f}] rad"
    report = JointReport(joint.name, joint.direction, old_offset, joint.offset_rad, q_min,
                         q_max, joint.lower_rad, joint.upper_rad)
    return joint, report, warning


def calibrate_joints(cfg: RobotConfig, bus: MotorBus, ask: Callable[[str], object],
                     sweep_done: Callable[[], bool], sweep: SweepConfig | None = None,
                     tighten: bool = False, tell: Callable[[str], object] = print,
                     sleep: Callable[[float], None] = time.sleep) -> JointCalibrationResult:
    """The guided procedure of the module docstring; returns the calibrated config."""
    sweep = sweep or SweepConfig()
    ids = cfg.ids
    try:
        bus.disable_torque(ids)
    except DeviceError as exc:
        raise DeviceError(f"joint calibration: cannot switch torque off: {exc}") from exc
    ask(REFERENCE_POSE_PROMPT)
    joints = with_offsets(cfg, read_servo_rad(bus, ids))
    tell(SWEEP_PROMPT)
    names = tuple(j.name for j in cfg.joints)
    lo, hi, samples = record_range(lambda: read_servo_rad(bus, ids), sweep_done, sweep, names,
                                   sleep)
    out, reports, warnings = [], [], []
    for joint, old, a, b in zip(joints, cfg.joints, lo, hi, strict=True):
        joint, report, warning = apply_range(joint, old.offset_rad, float(a), float(b), sweep,
                                             tighten)
        out.append(joint)
        reports.append(report)
        if warning:
            warnings.append(warning)
    try:
        calibrated = cfg.replace(joints=tuple(out))
    except ConfigError as exc:
        raise ConfigError(f"joint calibration refused: {exc}") from exc
    return JointCalibrationResult(calibrated, tuple(reports), tuple(warnings), samples)


class EnterKey:
    """A `sweep_done` for a keyboard: the first call starts a thread blocked in `ask("")`;
    true once it has returned (Enter pressed, or stdin closed)."""

    def __init__(self, ask: Callable[[str], object] = input):
        self._ask = ask
        self._pressed = threading.Event()
        self._thread: threading.Thread | None = None

    def _wait(self) -> None:
        try:
            with contextlib.suppress(EOFError):  # stdin closed: as good as Enter
                self._ask("")
        finally:
            self._pressed.set()

    def __call__(self) -> bool:
        if self._thread is None:
            self._thread = threading.Thread(target=self._wait, daemon=True,
                                            name="calibration-enter")
            self._thread.start()
        return self._pressed.is_set()


def format_table(result: JointCalibrationResult) -> str:
    """One line per motor: direction, old and new offset, measured range and limits (rad)."""
    head = (f"{'joint':<14}{'dir':>4}{'old off':>9}{'new off':>9}{'meas min':>10}"
            f"{'meas max':>10}{'lower':>9}{'upper':>9}")
    rows = [f"{r.name:<14}{r.direction:>+4d}{r.old_offset_rad:>9.3f}{r.new_offset_rad:>9.3f}"
            f"{r.measured_min_rad:>10.3f}{r.measured_max_rad:>10.3f}{r.lower_rad:>9.3f}"
            f"{r.upper_rad:>9.3f}" for r in result.joints]
    return "\n".join([head, *rows])
