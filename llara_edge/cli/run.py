"""`llara-edge run`: the closed loop camera -> policy -> geometry -> safety -> arm.

With no arguments it runs one visual_manipulation episode on the simulator: the bundled
robot config (SO-101, suction tool), the real Feetech driver talking to simulated servos on
a pty, the simulator camera, and the bundled tiny policy exported to `artifacts/tiny-llara`
(tools/setup.sh does that). Real devices come from a robot TOML and overrides:
`--camera realsense --arm feetech:/dev/ttyUSB0 --robot robot.toml --task "Put the ..."`.

Nothing stands in silently for what was asked (robot/preflight.py): a missing or broken
artifact is an ArtifactError (the torch reference runs only as `--policy torch-reference
--checkpoint DIR`); a real arm refuses the simulator's camera unless it is named, and needs a
real hand-eye calibration unless `--allow-uncalibrated` (logged). The devices are opened and
pinged before the policy loads (a wrong port fails in seconds, not after a 7B load), and the
first lines say which policy, camera, calibration and arm are in control.

Prints one line per episode, the success rate (simulator), the per-stage latency table
(p50 / p95 / p99 / max ms) and one JSON line last; writes the rollout GIF (predicted points
drawn on the frames) and the telemetry JSON under --out. SIGINT / SIGTERM stop the arm in a
controlled way (hold, then torque off with --torque-off) before the command exits.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DEFAULT_ARTIFACT = Path("artifacts/tiny-llara")
POLICIES = ("model", "torch-reference", "oracle")
DEFAULT_OUT = Path("runs/run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="visual_manipulation",
                        help="simulator: a task family; real robot: the instruction text")
    parser.add_argument("--level", default="L1", help="simulator task level")
    parser.add_argument("--episodes", type=int, default=1, help="simulator episodes (seeds)")
    parser.add_argument("--seed", type=int, default=0, help="first simulator seed")
    parser.add_argument("--robot", type=Path, help="robot TOML (default: bundled so101_sim)")
    parser.add_argument("--camera", help="camera kind override: sim, software-realsense, "
                        "realsense, file")
    parser.add_argument("--camera-serial", default=None, help="RealSense serial number")
    parser.add_argument("--arm", help="bus override KIND:PORT, e.g. feetech:/dev/ttyUSB0, "
                        "or 'virtual' (the simulator)")
    parser.add_argument("--policy", choices=POLICIES, default="model",
                        help="model: the exported --artifact (runtime engines); "
                        "torch-reference: the source --checkpoint in torch (workstation); "
                        "oracle: the simulator's scripted expert answering in text (no model)")
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT,
                        help="export directory (with manifest.json) for --policy model")
    parser.add_argument("--checkpoint", type=Path,
                        help="source checkpoint for --policy torch-reference")
    parser.add_argument("--allow-uncalibrated", action="store_true",
                        help="real arm without a real hand-eye calibration (bench-top tests; "
                        "logged): points will not land where the camera saw them")
    parser.add_argument("--max-steps", type=int, default=8,
                        help="decisions per episode on a real robot")
    parser.add_argument("--inbc", action="store_true", help="simulator: no oracle boxes")
    parser.add_argument("--torque-off", action="store_true",
                        help="after a stop: hold, then switch the motors off")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="GIF and telemetry")
    parser.add_argument("--no-gif", action="store_true")
    add_runtime_arguments(parser)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """The runtime's engines: one option per RuntimeConfig CLI field (cli/options.py)."""
    from llara_edge.cli.options import add_options
    from llara_edge.runtime.config import RuntimeConfig

    g = parser.add_argument_group("runtime", "engines of the exported artifact (docs/runtime."
                                  "md); --policy torch-reference keeps --max-new-tokens only")
    add_options(g, RuntimeConfig)


def runtime_config(args: argparse.Namespace):
    """RuntimeConfig from the runtime arguments (validated there: ConfigError)."""
    from llara_edge.cli.options import values
    from llara_edge.formats import N_ARM_JOINTS
    from llara_edge.runtime.config import RuntimeConfig

    return RuntimeConfig(**values(args, RuntimeConfig), n_joints=N_ARM_JOINTS)


def robot_config(args: argparse.Namespace):
    """The robot config with the command-line overrides applied."""
    import dataclasses

    from llara_edge.errors import ConfigError
    from llara_edge.robot.config import VIRTUAL_PORT, RobotConfig

    cfg = RobotConfig.load(args.robot) if args.robot else RobotConfig.default()
    if args.arm:
        kind, _, port = args.arm.partition(":")
        if args.arm == VIRTUAL_PORT:
            kind, port = cfg.bus.kind, VIRTUAL_PORT
        if not port:
            raise ConfigError(f"--arm must look like feetech:/dev/ttyUSB0, got {args.arm!r}")
        cfg = cfg.replace(bus=dataclasses.replace(cfg.bus, kind=kind, port=port))
    camera = cfg.camera
    if args.camera:
        camera = dataclasses.replace(camera, kind=args.camera)
    if args.camera_serial is not None:
        camera = dataclasses.replace(camera, serial=args.camera_serial)
    safety = dataclasses.replace(cfg.safety, torque_off_on_stop=cfg.safety.torque_off_on_stop
                                 or args.torque_off)
    return cfg.replace(camera=camera, safety=safety)


def log(message: str) -> None:
    print(message, flush=True)


def _check_arguments(args: argparse.Namespace, cfg) -> None:
    """Argument combinations, refused before any device opens."""
    from llara_edge.errors import ConfigError

    if args.policy == "oracle" and not cfg.bus.is_virtual:
        raise ConfigError("--policy oracle needs the simulator (a virtual bus)")
    if args.policy == "torch-reference" and args.checkpoint is None:
        raise ConfigError("--policy torch-reference needs --checkpoint DIR (the source "
                          "checkpoint; torch is a workstation dependency)")
    if args.policy != "torch-reference" and args.checkpoint is not None:
        raise ConfigError("--checkpoint is only read by --policy torch-reference; the runtime "
                          "loads the exported --artifact")
    if args.policy != "oracle":
        runtime_config(args)  # ConfigError on a bad engine option, before any device opens
    if not cfg.bus.is_virtual and len(args.task.split()) < 2:
        raise ConfigError(f"on a real robot --task is the instruction, e.g. --task \"Put the "
                          f"red block into the green pan.\", got {args.task!r}")


def _open_robot(cfg):
    """The devices, opened (and every servo pinged) before the policy loads."""
    from llara_edge.errors import ConfigError

    if not cfg.bus.is_virtual:
        from llara_edge.robot.robots import RealRobot

        return RealRobot(cfg)
    try:
        from llara_edge.sim.robot import SimRobot
    except ModuleNotFoundError as exc:  # a robot install has no MuJoCo
        if (exc.name or "").split(".")[0] != "mujoco":
            raise
        raise ConfigError(f"the simulator is not installed here ({exc}); install the 'sim' "
                          "extra, or drive a real arm: --arm feetech:/dev/ttyUSB0 --robot "
                          "robot.toml --task \"...\"") from exc
    return SimRobot(cfg)


def _load_policy(args: argparse.Namespace, robot) -> tuple[object, str]:
    """(text policy, the line saying what it is): exactly the one asked for."""
    from llara_edge.robot.policy_io import (
        describe_runtime,
        load_named_policy,
        load_runtime_policy,
    )

    if args.policy == "oracle":
        from llara_edge.sim.expert_policy import OracleTextPolicy

        return OracleTextPolicy(robot.env), "oracle: the simulator's scripted expert (no model)"
    if args.policy == "torch-reference":
        policy = load_named_policy("torch-reference", args.checkpoint, runtime_config(args))
        return policy, f"torch-reference on {args.checkpoint} (fp32 torch, greedy)"
    policy = load_runtime_policy(args.artifact, runtime_config(args))
    return policy, describe_runtime(policy)


def _run_sim(args, cfg, robot, policy, tel) -> dict:
    from llara_edge.errors import ConfigError
    from llara_edge.robot.loop import RobotLoop
    from llara_edge.robot.policy_io import recorded_variants
    from llara_edge.robot.watchdog import StopSignals
    from llara_edge.sim import TASK_FAMILIES
    from llara_edge.sim.prompter import SimPrompter

    if args.task not in TASK_FAMILIES:
        raise ConfigError(f"in the simulator --task is a task family {list(TASK_FAMILIES)}, "
                          f"got {args.task!r}")
    results = []
    prompter = SimPrompter(robot.env, describe=not args.inbc,
                           variants=recorded_variants(policy))
    loop = RobotLoop(robot.io, policy, prompter, cfg, robot.kin, tel)
    try:
        with StopSignals(loop.watchdog):
            for seed in range(args.seed, args.seed + args.episodes):
                task = robot.reset(args.task, args.level, seed)
                res = loop.run_episode(seed, task.max_steps, robot.evaluate)
                results.append(res)
                log(f"  seed {seed:<4} {'success' if res.success else 'FAIL   '} "
                    f"steps {res.steps}  {task.instruction}  {res.outcomes}"
                    + (f"  failure: {res.failure}" if res.failure else ""))
                if res.stopped:
                    break
    finally:
        loop.close()
    successes = sum(r.success for r in results)
    monitor = robot.monitor
    log(f"\n{args.task} {args.level}: {successes}/{len(results)} episodes succeeded")
    log(f"servo goal writes applied: {monitor.packets}, outside the limits: "
        f"{len(monitor.violations)}")
    return {"mode": "sim", "task": args.task, "level": args.level, "episodes": len(results),
            "successes": successes, "success_rate": successes / max(1, len(results)),
            "goal_writes": monitor.packets, "limit_violations": len(monitor.violations),
            "stopped": loop.stopped, "_frames": loop.gif_frames}


def _run_real(args, cfg, robot, policy, tel) -> dict:
    from llara_edge.robot.loop import RobotLoop
    from llara_edge.robot.policy_io import TaskPrompter, recorded_variants
    from llara_edge.robot.watchdog import StopSignals

    prompter = TaskPrompter(args.task, variants=recorded_variants(policy))
    loop = RobotLoop(robot.io, policy, prompter, cfg, robot.kin, tel)
    try:
        with StopSignals(loop.watchdog):
            res = loop.run_episode(0, args.max_steps)
        if not loop.stopped:
            loop.finish()
    finally:
        loop.close()
    log(f"  {res.steps} decisions: {res.outcomes}")
    return {"mode": "real", "task": args.task, "decisions": res.steps,
            "executed": res.outcomes.count("executed"), "stopped": loop.stopped,
            "_frames": loop.gif_frames}


def run(args: argparse.Namespace) -> int:
    from llara_edge.robot.preflight import Explicit, check_control, control_lines
    from llara_edge.robot.telemetry import Telemetry

    start = time.perf_counter()
    cfg = robot_config(args)
    _check_arguments(args, cfg)
    warnings = check_control(cfg, Explicit.of(args.robot, args.camera is not None),
                             args.allow_uncalibrated)  # refused before anything opens
    tel = Telemetry()
    for warning in warnings:
        tel.event("override", warning=warning)
    with _open_robot(cfg) as robot:
        policy, described = _load_policy(args, robot)
        for line in control_lines(cfg, robot.camera, described, warnings):
            log(line)
        try:
            report = (_run_sim if cfg.bus.is_virtual else _run_real)(args, cfg, robot, policy,
                                                                      tel)
        finally:
            getattr(getattr(policy, "policy", None), "close", lambda: None)()
    frames = report.pop("_frames")
    log("\nper-stage latency (ms):\n" + tel.table())
    args.out.mkdir(parents=True, exist_ok=True)
    gif = None if args.no_gif or not frames else _save_gif(frames, args.out / "rollout.gif")
    report.update({"robot": cfg.name, "policy": described, "overrides": warnings,
                   "outcomes": tel.outcomes(), "gif": gif,
                   "latency_ms": {k: {"p50": v["p50_ms"], "p95": v["p95_ms"]}
                                  for k, v in tel.summary().items()},
                   "wall_s": round(time.perf_counter() - start, 2)})
    report["telemetry"] = str(tel.write_json(args.out / "telemetry.json", report))
    print(json.dumps(report), flush=True)
    return 0 if report.get("stopped") is None else 1


def _save_gif(frames, path: Path) -> str:
    from llara_edge.sim.recorder import RolloutRecorder

    rec = RolloutRecorder(max_frames=120)
    rec.frames = list(frames)
    return str(rec.save(path))

