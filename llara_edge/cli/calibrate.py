"""`llara-edge calibrate`: hand-eye calibration (T_base_cam) from point correspondences, or
`--joints`: guided joint calibration of a real arm (robot/joint_calibration.py).

Modes:
- simulator (default with the bundled config, or a config whose bus port is "virtual"):
  the arm touches clear table spots through the virtual Feetech bus, the camera sees them
  afterwards; the fit is compared with the simulator's true extrinsics (rotation error in
  degrees, translation error in mm). `--perturb` starts from a wrong hand-eye in the config
  to show that calibration replaces it.
- `--interactive` (real hardware): torque off, the operator touches marks and types their
  pixels in saved snapshots.
- `--from-file points.json`: refit saved correspondences.
The fit (least squares over every point, Kabsch/Umeyama) and its residuals are printed, the
correspondences saved next to the config, and the hand-eye written into the robot TOML
atomically (`--robot` in place, or `--out`). One JSON line last.

`--joints` (real bus only): torque off, the operator holds the reference (zero) pose ->
offsets, then sweeps every joint -> measured ranges (warnings where the software limits
exceed them; `--tighten-limits` narrows them). A table and the calibrated joints written
atomically as above; one JSON line last. Refusals write nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_OUT = Path("runs/calibrate/robot.toml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", type=Path, help="robot TOML (default: bundled so101_sim)")
    parser.add_argument("--out", type=Path, help="where the calibrated TOML goes "
                        f"(default: --robot in place, else {DEFAULT_OUT})")
    parser.add_argument("--points", type=int, default=9, help="correspondences to collect")
    parser.add_argument("--seed", type=int, default=0, help="simulator scene")
    parser.add_argument("--click-noise-px", type=float, default=0.5,
                        help="simulator: std of the simulated operator's click error")
    parser.add_argument("--perturb", action="store_true",
                        help="simulator: start from a hand-eye 5 deg / 3 cm off")
    parser.add_argument("--interactive", action="store_true", help="real hardware, guided")
    parser.add_argument("--from-file", type=Path, help="refit saved correspondences (JSON)")
    parser.add_argument("--joints", action="store_true",
                        help="real arm: guided joint calibration (offsets and ranges)")
    parser.add_argument("--tighten-limits", action="store_true",
                        help="--joints: narrow the software limits to the measured range "
                        "minus a 2 deg margin")
    parser.add_argument("--sweep-hz", type=float, default=30.0,
                        help="--joints: present-position samples per second of the sweep")


def _perturbed(cfg):
    """The config with its hand-eye turned by 5 degrees and moved by 3 cm."""
    import numpy as np

    from llara_edge.geometry.kinematics import axis_angle_matrix
    from llara_edge.robot.config import HandEye

    T = cfg.hand_eye.matrix
    axis = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    T[:3, :3] = axis_angle_matrix(axis, np.radians(5.0)) @ T[:3, :3]
    T[:3, 3] += [0.02, -0.02, 0.01]
    return cfg.replace(hand_eye=HandEye.from_matrix(T, source="perturbed for a demo",
                                                     simulated=True))


def _collect_sim(args, cfg) -> tuple[list, dict]:
    from llara_edge.robot.driver import Driver
    from llara_edge.robot.watchdog import Watchdog
    from llara_edge.sim.calibration import collect_sim
    from llara_edge.sim.robot import SimRobot

    with SimRobot(cfg) as robot, Watchdog(lambda reason: robot.arm.hold()) as watchdog:
        robot.reset("visual_manipulation", "L1", args.seed)
        driver = Driver(robot.arm, robot.bridge, cfg, watchdog)
        points = collect_sim(robot, driver, args.points, args.click_noise_px, args.seed)
        return points, {"T_true": robot.T_base_cam_truth}


def _collect_interactive(args, cfg, out: Path) -> list:
    from llara_edge.robot.calibration import collect_interactive
    from llara_edge.robot.robots import RealRobot

    with RealRobot(cfg) as robot:
        return collect_interactive(robot.arm, robot.camera, robot.kin, args.points,
                                   cfg.camera.hole_radius, input, out.parent / "snapshots")


def run_joints(cfg, bus, out: Path, ask=input, sweep_done=None, tighten: bool = False,
               sweep_hz: float = 30.0, sleep=None) -> dict:
    """Joint calibration on an open bus; prints the table, saves, prints one JSON line.
    Returns that report. Nothing is written when the calibration refuses (it raises)."""
    import time

    from llara_edge.robot.joint_calibration import (
        EnterKey,
        SweepConfig,
        calibrate_joints,
        format_table,
    )

    result = calibrate_joints(cfg, bus, ask, sweep_done or EnterKey(ask),
                              SweepConfig(rate_hz=sweep_hz), tighten, sleep=sleep or time.sleep)
    print(format_table(result))
    for warning in result.warnings:
        print(f"WARNING: {warning}")
    report = {"mode": "joints", "samples": result.samples, "tightened": tighten,
              "warnings": list(result.warnings),
              "joints": {r.name: {"offset_rad": round(r.new_offset_rad, 6),
                                  "measured_rad": [round(r.measured_min_rad, 4),
                                                   round(r.measured_max_rad, 4)],
                                  "limits_rad": [r.lower_rad, r.upper_rad]}
                         for r in result.joints}}
    report["config"] = str(result.config.save(out))
    print(f"saved the joint calibration to {report['config']} (torque stays off)")
    print(json.dumps(report))
    return report


def _joints_real(args, cfg, out: Path) -> int:
    from llara_edge.errors import ConfigError
    from llara_edge.hw_drivers.base import make_bus

    if cfg.bus.is_virtual:
        raise ConfigError("--joints calibrates a real arm: set bus.port in the --robot config "
                          "(the virtual bus is covered by tests/test_joint_calibration.py)")
    with make_bus(cfg.bus.bus_config()).open() as bus:
        for sid in cfg.ids:
            bus.ping(sid)
        run_joints(cfg, bus, out, tighten=args.tighten_limits, sweep_hz=args.sweep_hz)
    return 0


def run(args: argparse.Namespace) -> int:
    from llara_edge.geometry.handeye import transform_error
    from llara_edge.robot.calibration import (
        fit_hand_eye,
        load_correspondences,
        save_correspondences,
        with_hand_eye,
    )
    from llara_edge.robot.config import RobotConfig

    cfg = RobotConfig.load(args.robot) if args.robot else RobotConfig.default()
    out = args.out or args.robot or DEFAULT_OUT
    if args.joints:
        return _joints_real(args, cfg, out)
    extra: dict = {}
    if args.from_file:
        points, mode = load_correspondences(args.from_file), "file"
    elif args.interactive or not cfg.bus.is_virtual:
        points, mode = _collect_interactive(args, cfg, out), "interactive"
    else:
        cfg = _perturbed(cfg) if args.perturb else cfg
        points, extra = _collect_sim(args, cfg)
        mode = "sim"
    before = cfg.hand_eye.matrix
    fit = fit_hand_eye(points)
    report = {"mode": mode, "points": fit.n_points, "rms_residual_mm": round(fit.rms_m * 1e3, 3),
              "max_residual_mm": round(fit.max_m * 1e3, 3)}
    print(f"{fit.n_points} correspondences; residual rms {report['rms_residual_mm']} mm, "
          f"max {report['max_residual_mm']} mm")
    if "T_true" in extra:
        for name, T in (("before", before), ("after", fit.T)):
            rot, mm = transform_error(T, extra["T_true"])
            report[f"{name}_rotation_error_deg"] = round(rot, 4)
            report[f"{name}_translation_error_mm"] = round(mm, 3)
            print(f"hand-eye {name:<6} vs simulator truth: rotation {rot:.3f} deg, "
                  f"translation {mm:.2f} mm")
    saved = with_hand_eye(cfg, fit, f"llara-edge calibrate ({mode}, {fit.n_points} points)",
                          simulated=mode == "sim")
    report["config"] = str(saved.save(out))
    report["correspondences"] = str(save_correspondences(
        points, Path(out).with_name(Path(out).stem + "_handeye_points.json")))
    print(f"saved the hand-eye to {report['config']}")
    print(json.dumps(report))
    return 0
