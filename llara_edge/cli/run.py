"""`llara-edge run`: the closed loop camera -> policy -> geometry -> safety -> arm.

With no arguments it runs one visual_manipulation episode on the simulator: the bundled
robot config (SO-101, suction tool), the real Feetech driver talking to simulated servos on
a pty, the simulator camera, and the bundled tiny policy (the exported artifact
`artifacts/tiny-llara` through the runtime when present, else the torch reference on
`models/tiny-llara`, which is logged). Real devices come from a robot TOML and overrides:
`--camera realsense --arm feetech:/dev/ttyUSB0 --robot robot.toml --task "Put the ..."`.

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
DEFAULT_CHECKPOINT = Path("models/tiny-llara")
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
    parser.add_argument("--policy", choices=("model", "oracle"), default="model",
                        help="model: the artifact (or torch reference); oracle: the "
                        "simulator's scripted expert answering in text (no model)")
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--max-steps", type=int, default=8,
                        help="decisions per episode on a real robot")
    parser.add_argument("--inbc", action="store_true", help="simulator: no oracle boxes")
    parser.add_argument("--torque-off", action="store_true",
                        help="after a stop: hold, then switch the motors off")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="GIF and telemetry")
    parser.add_argument("--no-gif", action="store_true")
    add_runtime_arguments(parser)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """The runtime's engines (RuntimeConfig fields; defaults are RuntimeConfig's own)."""
    from llara_edge.runtime.config import CACHE_TYPES_K, NUMBERINGS, PROVIDERS, RuntimeConfig

    d = RuntimeConfig()
    g = parser.add_argument_group("runtime", "engines of the exported artifact (docs/"
                                  "runtime.md); the torch fallback keeps --max-new-tokens only")
    g.add_argument("--llm", default=d.llm, help="LLM backend: gguf, onnx, trt, torch")
    g.add_argument("--vision", default=d.vision,
                   help="vision engine: onnx, onnx+fused, torch, native")
    g.add_argument("--variant", default=d.variant, help="GGUF variant of the artifact")
    g.add_argument("--threads", type=int, default=d.threads, help="CPU threads (0: all)")
    g.add_argument("--gpu-layers", type=int, default=d.gpu_layers,
                   help="llama.cpp layers offloaded to a GPU (a CUDA build of llama.cpp)")
    g.add_argument("--providers", default=",".join(d.providers),
                   help=f"ONNX Runtime providers in preference order, from {PROVIDERS}")
    g.add_argument("--cache-type-k", default=d.cache_type_k, choices=CACHE_TYPES_K,
                   help="llama.cpp K-cache type")
    g.add_argument("--draft-tokens", type=int, default=d.draft_tokens,
                   help="prompt-lookup draft length (0: off)")
    g.add_argument("--n-ctx", type=int, default=d.n_ctx, help="KV-cache positions")
    g.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
    g.add_argument("--numbering", default=d.numbering, choices=NUMBERINGS,
                   help="LLaRA answers' 'Step k:' header: numbered from the history, none, "
                   "or the model's choice (checkpoints trained on both)")


def runtime_config(args: argparse.Namespace):
    """RuntimeConfig from the runtime arguments (validated there: ConfigError)."""
    from llara_edge.robot.policy_io import N_LLARVA_JOINTS
    from llara_edge.runtime.config import RuntimeConfig

    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    return RuntimeConfig(llm=args.llm, vision=args.vision, variant=args.variant,
                         threads=args.threads, gpu_layers=args.gpu_layers,
                         providers=providers, cache_type_k=args.cache_type_k,
                         draft_tokens=args.draft_tokens, n_ctx=args.n_ctx,
                         max_new_tokens=args.max_new_tokens, n_joints=N_LLARVA_JOINTS,
                         numbering=args.numbering)


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


def _run_sim(args, cfg, policy, tel) -> dict:
    from llara_edge.errors import ConfigError
    from llara_edge.robot.loop import RobotLoop
    from llara_edge.robot.oracle import OracleTextPolicy
    from llara_edge.robot.policy_io import SimPrompter
    from llara_edge.robot.robots import SimRobot
    from llara_edge.robot.watchdog import StopSignals
    from llara_edge.sim import TASK_FAMILIES

    if args.task not in TASK_FAMILIES:
        raise ConfigError(f"in the simulator --task is a task family {list(TASK_FAMILIES)}, "
                          f"got {args.task!r}")
    results = []
    with SimRobot(cfg) as robot:
        policy = policy or OracleTextPolicy(robot.env)
        loop = RobotLoop(robot.io, policy, SimPrompter(robot.env, describe=not args.inbc),
                         cfg, robot.kin, tel)
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
        frames, stopped, monitor = loop.gif_frames, loop.stopped, robot.monitor
    successes = sum(r.success for r in results)
    log(f"\n{args.task} {args.level}: {successes}/{len(results)} episodes succeeded")
    log(f"servo goal writes applied: {monitor.packets}, outside the limits: "
        f"{len(monitor.violations)}")
    return {"mode": "sim", "task": args.task, "level": args.level, "episodes": len(results),
            "successes": successes, "success_rate": successes / max(1, len(results)),
            "goal_writes": monitor.packets, "limit_violations": len(monitor.violations),
            "stopped": stopped, "_frames": frames}


def _run_real(args, cfg, policy, tel) -> dict:
    from llara_edge.errors import ConfigError
    from llara_edge.robot.loop import RobotLoop
    from llara_edge.robot.policy_io import TaskPrompter
    from llara_edge.robot.robots import RealRobot
    from llara_edge.robot.watchdog import StopSignals
    from llara_edge.sim import TASK_FAMILIES

    if policy is None:
        raise ConfigError("--policy oracle needs the simulator (a virtual bus)")
    if args.task in TASK_FAMILIES:
        raise ConfigError("on a real robot --task is the instruction, e.g. --task \"Put the "
                          "red block into the green pan.\"")
    with RealRobot(cfg) as robot:
        loop = RobotLoop(robot.io, policy, TaskPrompter(args.task), cfg, robot.kin, tel)
        try:
            with StopSignals(loop.watchdog):
                res = loop.run_episode(0, args.max_steps)
            if not loop.stopped:
                loop.finish()
        finally:
            loop.close()
        log(f"  {res.steps} decisions: {res.outcomes}")
        return {"mode": "real", "task": args.task, "decisions": res.steps,
                "stopped": loop.stopped, "_frames": loop.gif_frames}


def run(args: argparse.Namespace) -> int:
    from llara_edge.robot.policy_io import load_policy
    from llara_edge.robot.telemetry import Telemetry

    start = time.perf_counter()
    cfg = robot_config(args)
    policy = None if args.policy == "oracle" else load_policy(
        args.artifact, args.checkpoint, log, runtime_config(args))
    name = getattr(policy, "name", "oracle")
    tel = Telemetry()
    log(f"robot {cfg.name}: bus {cfg.bus.kind}:{cfg.bus.port}, camera {cfg.camera.kind} "
        f"{cfg.camera.width}x{cfg.camera.height}, policy {name}")
    report = (_run_sim if cfg.bus.is_virtual else _run_real)(args, cfg, policy, tel)
    frames = report.pop("_frames")
    log("\nper-stage latency (ms):\n" + tel.table())
    args.out.mkdir(parents=True, exist_ok=True)
    gif = None if args.no_gif or not frames else _save_gif(frames, args.out / "rollout.gif")
    report.update({"robot": cfg.name, "policy": name,
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

