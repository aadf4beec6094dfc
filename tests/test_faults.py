"""Fault injection on the closed loop: bus, servo, camera and policy faults.

Every test runs simulator episodes through the real Feetech driver and the virtual bus on a
pty. Whatever is injected, three things must hold: no goal outside the limits reaches the
servos (`robot.monitor` decodes every Goal_Position write the simulated servos apply and
checks it against the limits and the speed limit; asserted after every test), the step
records a reason (outcome tag + error text), and the loop either recovers (later steps
execute) or stops in a controlled way (hold, optionally torque off). The counts of injected
faults and outcomes are printed at the end of the module (run with -s to see them).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest

from llara_edge.hw_drivers.virtual.pty_bus import FaultConfig
from llara_edge.robot.config import RobotConfig
from llara_edge.robot.loop import LoopConfig, RobotLoop
from llara_edge.robot.policy_io import PolicyOutput
from llara_edge.robot.telemetry import Telemetry
from llara_edge.sim.expert_policy import OracleTextPolicy
from llara_edge.sim.prompter import SimPrompter
from llara_edge.sim.robot import SimRobot

REPORT: dict[str, dict] = {}


@dataclass
class CountingFaults(FaultConfig):
    """FaultConfig that counts what it injects."""

    dropped: int = 0
    corrupted: int = 0

    def decide(self, servo_id: int) -> tuple[bool, bool]:
        drop, corrupt = super().decide(servo_id)
        self.dropped += drop
        self.corrupted += corrupt
        return drop, corrupt


@pytest.fixture(scope="module")
def robot():
    base = RobotConfig.default()
    cfg = base.replace(bus=dataclasses.replace(base.bus, timeout_s=0.05, retries=3))
    with SimRobot(cfg) as robot:
        yield robot
    print("\nfault injection summary (injected -> outcomes):")
    for name, row in REPORT.items():
        print(f"  {name:<28} {row}")


@pytest.fixture(autouse=True)
def audit(robot):
    robot.virtual.faults = CountingFaults()
    yield
    assert robot.monitor.violations == [], robot.monitor.violations[:5]
    robot.virtual.faults = CountingFaults()
    for sid in robot.cfg.ids:
        robot.virtual.set_fault(sid, 0)


class Scripted:
    """Wraps the oracle: `script[i]` (a callable of the step index) runs before answer i."""

    def __init__(self, env, script=None):
        self.oracle, self.script, self.calls = OracleTextPolicy(env), script or {}, 0

    def act(self, rgb, user_text):
        self.calls += 1
        hook = self.script.get(self.calls)
        if hook is not None:
            answer = hook()
            if answer is not None:
                return PolicyOutput(answer)
        return self.oracle.act(rgb, user_text)


def episode(robot, policy, seed=0, family="visual_manipulation", cfg=None, camera=None,
            max_steps=None):
    cfg = cfg or robot.cfg
    io = robot.io if camera is None else dataclasses.replace(robot.io, camera=camera)
    loop = RobotLoop(io, policy, SimPrompter(robot.env), cfg, robot.kin, Telemetry(),
                     loop_cfg=LoopConfig(record=False))
    task = robot.reset(family, "L1", seed)
    try:
        result = loop.run_episode(seed, max_steps or task.max_steps, robot.evaluate)
    finally:
        loop.close()
    return result, loop


def errors(loop) -> list[str]:
    return [rec.info.get("error", "") for rec in loop.telemetry.steps]


def test_corrupted_reply_bytes_are_retried(robot):
    faults = CountingFaults(corrupt_prob=0.03, seed=1)
    robot.virtual.faults = faults
    before = dataclasses.replace(robot.bus.stats)
    result, _loop = episode(robot, Scripted(robot.env), seed=0)
    protocol_errors = robot.bus.stats.protocol_errors - before.protocol_errors
    REPORT["corrupted reply bytes"] = {"injected": faults.corrupted,
                                       "protocol_errors_retried": protocol_errors,
                                       "outcomes": dict(Counter(result.outcomes)),
                                       "success": result.success}
    assert faults.corrupted > 10 and protocol_errors > 0
    assert result.success and not result.stopped  # retries recovered every exchange


def test_dropped_replies_time_out_and_are_retried(robot):
    faults = CountingFaults(drop_prob=0.02, seed=2)
    robot.virtual.faults = faults
    before = robot.bus.stats.timeouts
    result, _loop = episode(robot, Scripted(robot.env), seed=1)
    timeouts = robot.bus.stats.timeouts - before
    REPORT["dropped replies"] = {"injected": faults.dropped, "timeouts_retried": timeouts,
                                 "outcomes": dict(Counter(result.outcomes)),
                                 "success": result.success}
    assert faults.dropped > 10 and timeouts > 0
    for outcome in result.outcomes:  # a rare exchange may fail every retry: logged, recovered
        assert outcome == "executed" or outcome.startswith("aborted:"), outcome
    assert not result.stopped


def test_servo_error_bits_stop_the_run(robot):
    cfg = robot.cfg.replace(safety=dataclasses.replace(robot.cfg.safety,
                                                       torque_off_on_stop=True))
    result, loop = episode(robot, Scripted(robot.env, {1: lambda: robot.virtual.set_fault(
        3, 0x20)}), seed=2, cfg=cfg)  # overload on the elbow while the first answer is made
    REPORT["servo error bits (overload)"] = {"injected": 1, "outcomes": result.outcomes,
                                             "stopped": result.stopped}
    assert result.outcomes[0] == "aborted:device:status_error"
    assert result.stopped.startswith("servo fault") and "overload" in result.stopped
    assert "overload" in errors(loop)[0]
    assert robot.virtual.wait_requests(robot.bus.stats.packets, 2.0)
    assert not any(robot.virtual.torque_enabled().values())  # held, then released


def test_silent_servo_times_out_and_the_loop_stops_after_repeated_faults(robot):
    faults = robot.virtual.faults

    def silence():
        faults.silent_ids.add(4)

    result, loop = episode(robot, Scripted(robot.env, {1: silence}), seed=3)
    REPORT["silent servo (timeouts)"] = {"injected": faults.dropped,
                                         "outcomes": result.outcomes, "stopped": result.stopped}
    assert result.outcomes[0] == "aborted:device:timeout"
    assert all(o.startswith("aborted:device:timeout") for o in result.outcomes)
    assert result.stopped.startswith(f"{robot.cfg.safety.max_consecutive_faults} faults")
    assert "servo 4" in errors(loop)[0]


class HoleyCamera:
    """The robot camera with a depth hole (NaN) around given pixels on the first frames."""

    threaded_reader = False

    def __init__(self, camera, holes: dict[int, tuple[float, float]], half: int = 8):
        self.camera, self.holes, self.half, self.reads = camera, holes, half, 0

    def read(self, timeout_s=None):
        frame = self.camera.read()
        self.reads += 1
        if self.reads not in self.holes:
            return frame
        u, v = (int(c) for c in self.holes[self.reads])
        depth = frame.depth.copy()
        depth[max(0, v - self.half):v + self.half, max(0, u - self.half):u + self.half] = np.nan
        return dataclasses.replace(frame, depth=depth)

    async_read = read


def test_depth_hole_at_the_pick_point_is_refused_then_recovered(robot):
    robot.reset("visual_manipulation", "L1", 5)
    target = robot.env.task.targets[0]
    pick_px = next(o.top_center_px for o in robot.env.oracle_objects() if o.name == target)
    camera = HoleyCamera(robot.camera, {1: pick_px})
    result, loop = episode(robot, Scripted(robot.env), seed=5, camera=camera)
    REPORT["depth hole at the pick point"] = {"injected": 1, "outcomes": result.outcomes,
                                              "success": result.success}
    assert result.outcomes[0] == "refused:no_depth" and "no valid depth" in errors(loop)[0]
    assert "executed" in result.outcomes[1:] and result.success


def test_malformed_model_output_is_refused(robot):
    garbage = {1: lambda: ")</b>. <b>.", 2: lambda: "Step 1: Pick up the <p>x</p> at "
               "<b>(1.700, 0.200)</b>, rotate <r>[0]</r> degrees, and drop it at "
               "<b>(0.500, 0.500)</b>."}
    goals_before = robot.monitor.packets
    result, _loop = episode(robot, Scripted(robot.env, garbage), seed=6, max_steps=3)
    REPORT["malformed model output"] = {"injected": 2, "outcomes": result.outcomes,
                                        "success": result.success}
    assert result.outcomes[:2] == ["refused:parse_error", "refused:parse_error"]
    assert result.outcomes[2] == "executed" and result.success
    assert robot.monitor.packets > goals_before


def test_unsafe_answers_are_refused_or_clamped(robot):
    far = {1: lambda: "Step 1: Pick up the <p>x</p> at <b>(0.020, 0.030)</b>, rotate "
           "<r>[0]</r> degrees, and drop it at <b>(0.980, 0.970)</b>."}
    result, _loop = episode(robot, Scripted(robot.env, far), seed=7, max_steps=1)
    assert result.outcomes[0].startswith("refused:"), result.outcomes
    kin = robot.kin
    into_table = kin.ik([0.2, 0.0, 0.02], tool_down=True) + np.array([0.0, 0.35, 0, 0, 0])
    assert kin.fk(into_table)[2, 3] < -0.01
    values = ", ".join(f"{v:.4f}" for v in into_table)
    wild = {1: lambda: "The next action step: [9.0, -9.0, 9.0, 9.0, 9.0, 1.0]",
            2: lambda: f"The next action step: [{values}, 1.0]"}
    reach, _loop2 = episode(robot, Scripted(robot.env, wild), seed=0, family="reach",
                           max_steps=2)
    REPORT["unsafe answers"] = {"injected": 3, "outcomes": result.outcomes + reach.outcomes}
    assert reach.outcomes[0] in ("executed", "refused:safety:outside_workspace",
                                 "refused:safety:below_table")
    assert reach.outcomes[1].startswith("refused:safety"), reach.outcomes  # into the table


def test_stalled_policy_is_held_by_the_watchdog_and_discarded(robot):
    cfg = robot.cfg.replace(safety=dataclasses.replace(robot.cfg.safety,
                                                       policy_deadline_s=0.2))
    marks = {}

    def stall():
        marks["goals"] = robot.monitor.packets
        time.sleep(0.8)
        marks["goals_after"] = robot.monitor.packets
        return None  # then answer like the oracle, too late

    result, loop = episode(robot, Scripted(robot.env, {1: stall}), seed=8, cfg=cfg)
    REPORT["stalled policy (0.8 s > 0.2 s)"] = {"injected": 1, "outcomes": result.outcomes,
                                                "success": result.success}
    assert result.outcomes[0] == "refused:safety:stalled"
    assert marks["goals_after"] > marks["goals"]  # the watchdog held while the policy hung
    assert loop.watchdog.fired and "policy" in loop.watchdog.fired[0]
    assert "executed" in result.outcomes[1:]


def test_late_replies_count_as_timeouts(robot):
    """Last in the module: the virtual bus is still emitting the late replies when the
    test ends, and the module's teardown closes it."""
    robot.reset("visual_manipulation", "L1", 9)
    loop = RobotLoop(robot.io, Scripted(robot.env), SimPrompter(robot.env), robot.cfg,
                     robot.kin, Telemetry(), loop_cfg=LoopConfig(record=False))
    robot.virtual.faults = CountingFaults(delay_s=0.06)  # the reply timeout is 50 ms
    try:
        result = loop.run_episode(9, 2)
    finally:
        loop.close()
    REPORT["late replies (60 ms)"] = {"outcomes": result.outcomes, "stopped": result.stopped}
    assert result.outcomes == ["aborted:device:timeout"] * 2
