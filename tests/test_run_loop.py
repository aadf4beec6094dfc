"""The closed loop on the simulator through the virtual Feetech bus, and `llara-edge run`.

Episodes run the real driver over a pty to simulated servos whose goals move the MuJoCo arm
(lockstep bridge); `robot.monitor` audits every goal the servos apply. The oracle policy is
the scripted expert answering in text, so success is expected; the tiny trained policy is
only required to complete its episode (its answers may be refused, never unsafe).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from llara_drivers.camera_base import Camera, CameraConfig, Frame, register_camera
from llara_edge.cli.main import main
from llara_edge.errors import ConfigError
from llara_edge.robot.config import RobotConfig
from llara_edge.robot.loop import LoopConfig, RobotLoop
from llara_edge.robot.policy_io import (
    PolicyOutput,
    TaskPrompter,
    describe_runtime,
    load_runtime_policy,
)
from llara_edge.robot.robots import RealRobot
from llara_edge.robot.telemetry import Telemetry
from llara_edge.robot.watchdog import StopSignals
from llara_edge.sim.expert_policy import OracleTextPolicy
from llara_edge.sim.prompter import SimPrompter
from llara_edge.sim.robot import SimRobot

try:  # torch must be imported before MuJoCo creates an EGL context: later, its import crashes
    from llara_export import torch_ref
except ImportError:  # no `export` extra: the torch-policy test is skipped
    torch_ref = None

CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "tiny-llara"


@pytest.fixture(scope="module")
def robot():
    with SimRobot(RobotConfig.default()) as robot:
        yield robot


def _loop(robot, policy=None, cfg=None, **loop_kw) -> RobotLoop:
    return RobotLoop(robot.io, policy or OracleTextPolicy(robot.env), SimPrompter(robot.env),
                     cfg or robot.cfg, robot.kin, Telemetry(), loop_cfg=LoopConfig(**loop_kw))


def test_oracle_pick_and_place_episodes_succeed_through_the_bus(robot):
    loop = _loop(robot)
    sent_before, goals_before = robot.bus.stats.packets, robot.monitor.packets
    try:
        results = []
        for seed in (0, 1):
            task = robot.reset("visual_manipulation", "L1", seed)
            results.append(loop.run_episode(seed, task.max_steps, robot.evaluate))
    finally:
        loop.close()
    assert [r.success for r in results] == [True, True], [r.outcomes for r in results]
    assert robot.bridge.picked, "the cup never attached an object"
    stages = loop.telemetry.summary()
    for name in ("capture", "state", "prompt", "policy", "parse", "geometry", "safety", "plan",
                 "drive", "settle", "step"):
        assert stages[name]["n"] >= 2, name
    assert robot.monitor.packets - goals_before > 6 * 200  # every setpoint crossed the wire
    assert robot.monitor.violations == []
    assert robot.virtual.wait_requests(robot.bus.stats.packets, 2.0)
    assert robot.bus.stats.packets - sent_before > 400 and robot.bus.stats.timeouts == 0
    assert len(loop.gif_frames) >= 4  # one annotated frame per decision + final frames


def test_llarva_joint_steps_reach(robot):
    loop = _loop(robot)
    try:
        task = robot.reset("reach", "L1", 0)
        result = loop.run_episode(0, task.max_steps, robot.evaluate)
    finally:
        loop.close()
    assert result.success, result.outcomes
    assert set(result.outcomes) == {"executed"}
    assert robot.monitor.violations == []


class SweepPolicy:
    """Answers one LLaRA sweep: push the named object `push_m` further from the arm."""

    def __init__(self, env, push_m=0.05):
        self.env, self.push_m = env, push_m

    def act(self, rgb, user_text):
        from llara_edge.sim.camera import project_points

        env = self.env
        target = next(o for o in env.oracle_objects() if o.name == env.task.targets[0])
        start = np.array(target.position)
        stop = start + np.r_[start[:2] / np.linalg.norm(start[:2]) * self.push_m, 0.0]
        u, v = project_points(env.intrinsics, env.T_base_cam, stop[None, :])[0]
        w, h = env.intrinsics.width, env.intrinsics.height
        (a, b), (c, d) = target.top_center, (u / w, v / h)
        return PolicyOutput(f"Step 1: Sweep the <p>{target.name}</p> at <b>({a:.3f}, {b:.3f})"
                            f"</b>, rotate <r>[0]</r> degrees, and stop at <b>({c:.3f}, "
                            f"{d:.3f})</b>.")


def test_sweep_pushes_the_object_with_the_cup(robot):
    robot.reset("visual_manipulation", "L2", 0)  # L2: the object sits in the inner band
    name = robot.env.task.targets[0]
    before = robot.env.world.poses()[name].position.copy()
    loop = _loop(robot, SweepPolicy(robot.env))
    try:
        result = loop.run_episode(0, 1)
    finally:
        loop.close()
    moved = robot.env.world.poses()[name].position - before
    assert result.outcomes == ["executed"], loop.telemetry.steps[0].info
    assert np.linalg.norm(moved[:2]) > 0.01  # pushed by the cup, not picked
    assert robot.bridge.picked == []  # suction stayed off
    assert robot.env.world.model.geom_contype[robot.env.world.index.cup_geom] == 0  # restored
    assert robot.monitor.violations == []


class SignalAfterAnswer:
    """The oracle, plus a SIGINT to this process `delay_s` after its first answer (while
    the arm is driving the pick-and-place)."""

    def __init__(self, env, delay_s=0.1):
        self.oracle, self.delay_s, self.timer = OracleTextPolicy(env), delay_s, None

    def act(self, rgb, user_text):
        if self.timer is None:
            self.timer = threading.Timer(self.delay_s, os.kill, (os.getpid(), signal.SIGINT))
            self.timer.start()
        return self.oracle.act(rgb, user_text)


def test_sigint_stops_the_arm_and_turns_torque_off(robot):
    cfg = robot.cfg.replace(safety=dataclasses.replace(robot.cfg.safety,
                                                       torque_off_on_stop=True))
    policy = SignalAfterAnswer(robot.env)
    loop = _loop(robot, policy, cfg=cfg)
    task = robot.reset("visual_manipulation", "L1", 2)
    try:
        with StopSignals(loop.watchdog):
            result = loop.run_episode(2, task.max_steps, robot.evaluate)
    finally:
        policy.timer.cancel()
        loop.close()
    assert loop.stopped == "signal SIGINT" and result.stopped == "signal SIGINT"
    assert result.outcomes[-1] == "stopped:SIGINT"
    assert robot.virtual.wait_requests(robot.bus.stats.packets, 2.0)
    assert not any(robot.virtual.torque_enabled().values())
    goals = robot.monitor.packets
    time.sleep(0.2)
    assert robot.monitor.packets == goals and robot.monitor.violations == []
    kinds = [e["kind"] for e in loop.telemetry.events]
    assert "stop" in kinds and loop.telemetry.events[-1]["torque_off"] is True


@pytest.fixture(scope="module")
def torch_policy():
    if torch_ref is None:
        pytest.skip("torch (the export extra) is not installed")
    if not (CHECKPOINT / "config.json").is_file():
        pytest.skip("models/tiny-llara is not present")
    return torch_ref.load_text_policy(CHECKPOINT, 256)


def test_tiny_torch_policy_runs_an_episode(robot, torch_policy):
    task = robot.reset("visual_manipulation", "L1", 3)
    frame = robot.camera.read()
    prompt = SimPrompter(robot.env)(np.zeros(6), [])
    out = torch_policy.act(frame.color, prompt)
    assert out.text == torch_policy.policy.generate(frame.color, prompt)[0]  # same answer
    assert out.timings["preprocess"] > 0 and out.timings["generate"] > 0
    loop = _loop(robot, torch_policy)
    try:
        result = loop.run_episode(3, task.max_steps, robot.evaluate)
    finally:
        loop.close()
    assert result.steps >= 1 and not result.stopped
    for outcome in result.outcomes:
        assert outcome == "executed" or outcome.startswith("refused:"), outcome
    assert "generate" in loop.telemetry.summary()
    assert robot.monitor.violations == []


def test_cli_run_with_the_oracle(tmp_path, capsys):
    rc = main(["run", "--policy", "oracle", "--episodes", "1", "--seed", "4",
               "--out", str(tmp_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert rc == 0 and report["successes"] == 1 and report["limit_violations"] == 0
    assert report["goal_writes"] > 600 and Path(report["gif"]).is_file()
    telemetry = json.loads(Path(report["telemetry"]).read_text())
    assert telemetry["steps"] and "drive" in telemetry["summary"]
    assert any(line.startswith("drive") for line in lines)  # the latency table


def test_prompters_write_the_recorded_llarva_variant(robot):
    """TaskPrompter and SimPrompter write LLARVA's prompt in the variant they are given
    (None: "train", the training annotations' wording), pick-and-place prompts in none."""
    q = np.full(6, 0.1)
    plain = TaskPrompter("reach the red block", "llarva")(q, [])
    assert plain.endswith("]]. Can you predict action of the next 1 step?")
    evaluation = TaskPrompter("reach the red block", "llarva", variants={"llarva": "eval"})(q, [])
    assert evaluation.endswith("]], can you predict action of the next 1 step?")
    assert "[0.1, 0.1, 0.1, 0.1, 0.1]]" in evaluation
    robot.reset("reach", "L1", 0)
    assert SimPrompter(robot.env, variants={"llarva": "eval"})(q, []) == evaluation.replace(
        "reach the red block", robot.env.task.instruction.rstrip("."))
    robot.reset("visual_manipulation", "L1", 0)
    assert SimPrompter(robot.env, variants={"llarva": "eval"})(q, []).startswith("<image>\n<task>")


# ----------------------------------------------------------------------------- real path
class FixedLlarvaPolicy:
    """Answers one LLARVA joint step toward `target` (5 joints), gripper open."""

    def __init__(self, target):
        self.target, self.prompts = target, []

    def act(self, rgb, user_text):
        self.prompts.append(user_text)
        values = ", ".join(f"{v:.4f}" for v in self.target)
        return PolicyOutput(f"The next action step: [{values}, 1.0]")


def test_real_robot_path_with_a_serial_port_and_wall_clock(tmp_path):
    from llara_drivers.virtual.pty_bus import VirtualServoBus
    from llara_edge.robot.monitor import GoalMonitor

    base = RobotConfig.default()
    with VirtualServoBus("feetech", base.ids, speed_steps_s=4000) as servos:
        cfg = base.replace(bus=dataclasses.replace(base.bus, port=servos.port))
        monitor = GoalMonitor(servos, cfg)
        with RealRobot(cfg) as real:
            target = real.kin.home + np.array([0.3, 0.1, -0.1, 0.0, 0.2])
            policy = FixedLlarvaPolicy(target)
            loop = RobotLoop(real.io, policy, TaskPrompter("reach the red block", "llarva"),
                             cfg, real.kin, Telemetry(), loop_cfg=LoopConfig(record=False))
            start = time.monotonic()
            try:
                result = loop.run_episode(0, 3)
            finally:
                loop.close()
            elapsed = time.monotonic() - start
            q = real.arm.read()
    assert result.outcomes == ["executed"] * 3
    assert np.max(np.abs(q[:5] - target)) < 0.05  # the servos moved there by themselves
    assert elapsed >= 0.1 * 3  # wall-clock pacing: a joint step lasts >= 0.1 s
    assert "[0, 0, 0, 0, 0]" in policy.prompts[0]  # LLARVA history starts as zeros
    assert monitor.packets > 0 and monitor.violations == []


# ----------------------------------------------------------------------------- overlap
@register_camera("test-threaded")
class SlowThreadedCamera(Camera):
    """A camera whose frames take 50 ms each, read by the background reader."""

    def _open(self):
        self.n = 0

    def _grab(self, timeout_s):
        time.sleep(0.05)
        self.n += 1
        rgb = np.zeros((24, 32, 3), np.uint8)
        from llara_drivers.camera_model import Intrinsics

        return Frame(rgb, None, Intrinsics(32, 24, 30, 30, 16, 12), time.monotonic(), self.n)

    def _release(self):
        pass


def test_frames_are_captured_while_the_arm_moves(robot):
    cam = SlowThreadedCamera(CameraConfig(kind="test-threaded", width=32, height=24)).connect()
    io = dataclasses.replace(robot.io, camera=cam)
    loop = RobotLoop(io, OracleTextPolicy(robot.env), SimPrompter(robot.env), robot.cfg,
                     robot.kin)
    try:
        loop._capture()  # starts the background reader
        motion_end = time.monotonic()
        time.sleep(0.3)  # the arm moves and settles; the reader keeps capturing
        start = time.perf_counter()
        frame = loop._capture()
        waited = time.perf_counter() - start
    finally:
        loop.close()
        cam.close()
    assert frame.timestamp_s > motion_end and waited < 0.04  # ready, no 50 ms capture wait


def test_cli_device_overrides():
    import argparse

    from llara_edge.cli.run import add_arguments, robot_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = robot_config(parser.parse_args(["--arm", "feetech:/dev/ttyUSB0", "--camera",
                                          "realsense", "--camera-serial", "123", "--torque-off"]))
    assert (cfg.bus.kind, cfg.bus.port, cfg.bus.is_virtual) == ("feetech", "/dev/ttyUSB0", False)
    assert (cfg.camera.kind, cfg.camera.serial) == ("realsense", "123")
    assert cfg.safety.torque_off_on_stop
    default = robot_config(parser.parse_args([]))
    assert default == RobotConfig.default()
    with pytest.raises(ConfigError):
        robot_config(parser.parse_args(["--arm", "feetech"]))


def _run_args(*argv: str):
    import argparse

    from llara_edge.cli import run as run_cli

    parser = argparse.ArgumentParser()
    run_cli.add_arguments(parser)
    return run_cli.runtime_config(parser.parse_args(list(argv)))


def test_cli_run_runtime_arguments_reach_the_runtime_config():
    from llara_edge.runtime.config import RuntimeConfig

    assert _run_args() == RuntimeConfig(n_joints=5)  # the defaults are RuntimeConfig's own
    cfg = _run_args("--llm", "onnx", "--vision", "onnx+fused", "--variant", "f16",
                    "--threads", "1", "--gpu-layers", "99", "--providers", "tensorrt, cuda",
                    "--cache-type-k", "q8_0", "--draft-tokens", "0", "--n-ctx", "1024",
                    "--max-new-tokens", "64")
    assert (cfg.llm, cfg.vision, cfg.variant, cfg.threads, cfg.gpu_layers) == (
        "onnx", "onnx+fused", "f16", 1, 99)
    assert cfg.providers == ("tensorrt", "cuda") and cfg.cache_type_k == "q8_0"
    assert (cfg.draft_tokens, cfg.n_ctx, cfg.max_new_tokens) == (0, 1024, 64)
    for bad in (("--providers", "rocm"), ("--threads", "-1"), ("--providers", " , ")):
        with pytest.raises(ConfigError):
            _run_args(*bad)


def test_cli_run_bad_runtime_argument_is_a_clear_error(tmp_path, capsys):
    rc = main(["run", "--providers", "rocm,cpu", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and "providers" in err and not (tmp_path / "telemetry.json").exists()


def test_load_runtime_policy_passes_the_runtime_config(tmp_path_factory):
    from runtime_artifact import shared_artifact

    from llara_edge.runtime.config import RuntimeConfig

    cfg = RuntimeConfig(variant="f16", threads=1, cache_type_k="q8_0", draft_tokens=0,
                        max_new_tokens=48, grammar_cache_dir=None)
    policy = load_runtime_policy(shared_artifact(tmp_path_factory), cfg)
    try:
        assert policy.policy.config == cfg and policy.name == "runtime:gguf-f16+onnx"
        line = describe_runtime(policy)
        assert "K cache q8_0" in line and "drafts 0" in line and "manifest sha256" in line
        # numbering and prompt variant as the artifact records them (tiny-llara: numbered)
        assert "numbering numbered, prompt variant standard)" in line
    finally:
        policy.policy.close()
