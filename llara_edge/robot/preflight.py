"""What is in control of a run, checked before anything opens or moves.

Contract:
    explicit = Explicit.of(robot_toml_path, camera_flag=args.camera is not None)
    warnings = check_control(cfg, explicit, allow_uncalibrated)   # ConfigError when refused
    lines = control_lines(cfg, camera, policy_line, warnings)     # the run's first lines

With a real arm (a serial port in bus.port, not "virtual") nothing simulated may stand in for
a device silently:
- camera: a simulator kind (SIM_CAMERAS) only when it is named explicitly, by the robot TOML's
  [camera] kind or by --camera; the bundled config's default never reaches a real arm;
- hand-eye: a real calibration, i.e. a [hand_eye] table in the robot TOML that is not marked
  `simulated` (the bundled config's ground truth and simulator calibrations are). Without one
  the run is refused, unless `allow_uncalibrated` (--allow-uncalibrated, for bench-top tests
  where the arm must move but points need not land): then a WARNING is returned, printed among
  the first lines and recorded in telemetry.
The simulator (a virtual bus) needs none of this: its camera and hand-eye are its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llara_edge.errors import ConfigError
from llara_edge.robot import toml_io
from llara_edge.robot.config import SIM_CAMERAS, RobotConfig


@dataclass(frozen=True)
class Explicit:
    """What the operator named on purpose (not taken from a default)."""

    camera_kind: bool = False  # the robot TOML's [camera] kind, or --camera
    hand_eye: bool = False  # a [hand_eye] table in the robot TOML

    @classmethod
    def of(cls, robot_toml: Path | None, camera_flag: bool = False) -> Explicit:
        """From the robot TOML (None: the bundled config, which names nothing) and the CLI."""
        data = toml_io.load(robot_toml) if robot_toml else {}
        camera = data.get("camera") if isinstance(data.get("camera"), dict) else {}
        return cls(camera_kind=camera_flag or "kind" in camera,
                   hand_eye=isinstance(data.get("hand_eye"), dict))


def check_control(cfg: RobotConfig, explicit: Explicit, allow_uncalibrated: bool = False
                  ) -> list[str]:
    """Refuse (ConfigError) what would let something simulated drive a real arm; returns the
    warnings of an allowed override."""
    if cfg.bus.is_virtual:
        return []
    arm = f"{cfg.bus.kind}:{cfg.bus.port}"
    if cfg.camera.kind in SIM_CAMERAS and not explicit.camera_kind:
        raise ConfigError(
            f"the real arm {arm} would be driven by the simulator's camera ({cfg.camera.kind!r}, "
            "the bundled config's default): name the camera, e.g. --camera realsense or "
            "[camera] kind = \"realsense\" in the robot TOML (--robot)")
    problem = _calibration_problem(cfg, explicit)
    if problem is None:
        return []
    if not allow_uncalibrated:
        raise ConfigError(
            f"the real arm {arm} needs a real hand-eye calibration: {problem}; run `llara-edge "
            "calibrate --interactive --robot ROBOT.toml`, or pass --allow-uncalibrated for a "
            "bench-top test (points will not land where the camera saw them)")
    return [f"WARNING: --allow-uncalibrated: {problem}; pick and place points are NOT where "
            "the camera saw them (bench-top test only)"]


def _calibration_problem(cfg: RobotConfig, explicit: Explicit) -> str | None:
    if not explicit.hand_eye:
        return "the robot TOML has no [hand_eye] table (the default is not a calibration)"
    if cfg.hand_eye.simulated:
        return (f"its [hand_eye] is the simulator's ({cfg.hand_eye.source or 'simulated = true'})")
    return None


def describe_hand_eye(cfg: RobotConfig, uncalibrated: bool) -> str:
    he = cfg.hand_eye
    if uncalibrated:
        return "NONE (override: --allow-uncalibrated)"
    fit = (f", rms {he.rms_residual_mm} mm over {he.points} points"
           if he.rms_residual_mm is not None else "")
    kind = "simulated" if he.simulated else "real"
    return f"hand-eye {kind}: {he.source or 'no source given'}{fit}"


def control_lines(cfg: RobotConfig, camera, policy: str, warnings: list[str]) -> list[str]:
    """The run's first lines: which policy, camera, calibration and arm are in control."""
    cam = f"{cfg.camera.kind} {cfg.camera.width}x{cfg.camera.height}"
    if cfg.camera.serial:
        cam += f" serial {cfg.camera.serial}"
    if cfg.camera.path:
        cam += f" {cfg.camera.path}"
    source = getattr(camera, "intrinsics_source", "")
    if source:
        cam += f" (intrinsics: {source})"
    bus = "virtual (simulator, pty)" if cfg.bus.is_virtual else cfg.bus.port
    arm = (f"{cfg.name}: {cfg.bus.kind} {bus}, servo ids {list(cfg.ids)}, "
           f"workspace {list(cfg.workspace.min)}..{list(cfg.workspace.max)} m")
    return [f"policy: {policy}", f"camera: {cam}",
            f"calibration: {describe_hand_eye(cfg, bool(warnings))}", f"arm: {arm}", *warnings]
