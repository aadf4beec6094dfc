"""Robot config, calibration units, the safety layer, the watchdog and telemetry.

The arm tests drive a real Feetech driver over a pty to `VirtualServoBus` servos and assert
on every Goal_Position write the servos receive: whatever is commanded (NaN, far outside the
limits, faster than the speed limit), nothing outside the limits reaches them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time

import numpy as np
import pytest

from llara_drivers.base import BusConfig, make_bus
from llara_drivers.servo_wire import BusTimeoutError
from llara_drivers.virtual.pty_bus import VirtualServoBus
from llara_edge.errors import ConfigError, DepthError, GeometryError, ParseError, SafetyError
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.geometry.motion import JointTrajectory
from llara_edge.robot import toml_io
from llara_edge.robot.arm import Arm, kinematics_for
from llara_edge.robot.config import HandEye, JointCalibration, RobotConfig, WorkspaceBox
from llara_edge.robot.safety import JointGuard, SafetyLayer, SafetyRefusal, refusal_reason
from llara_edge.robot.telemetry import Telemetry
from llara_edge.robot.watchdog import StopSignals, Watchdog

GOAL_ADDRESS = 42  # STS3215 Goal_Position (2 bytes, little-endian, sign-magnitude bit 15)


@pytest.fixture(scope="module")
def cfg() -> RobotConfig:
    return RobotConfig.default()


# ----------------------------------------------------------------------------- config
def test_bundled_config_round_trips_and_matches_the_simulator(cfg, tmp_path):
    from llara_edge.sim.camera import base_from_camera
    from llara_edge.sim.config import SimConfig

    assert cfg.bus.is_virtual and cfg.bus.kind == "feetech"
    assert [j.name for j in cfg.joints] == [*ArmKinematics.so101().joint_names, "gripper"]
    sim = SimConfig()
    truth = base_from_camera(np.array(sim.camera_position), np.array(sim.camera_target))
    np.testing.assert_allclose(cfg.hand_eye.matrix, truth, atol=1e-12)
    path = cfg.save(tmp_path / "robot.toml")
    assert RobotConfig.load(path) == cfg
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


@pytest.mark.parametrize("change", [
    {"direction": 2}, {"lower_rad": 1.0, "upper_rad": 1.0}, {"offset_rad": 2.0},
    {"id": 300}, {"max_speed_rad_s": 0.0}])
def test_bad_joint_calibration_is_refused(change):
    base = {"name": "j", "id": 1, "lower_rad": -1.5, "upper_rad": 1.5}
    with pytest.raises(ConfigError):
        JointCalibration(**{**base, **change})


def test_bad_configs_are_refused(cfg):
    with pytest.raises(ConfigError, match="unique"):
        cfg.replace(joints=(*cfg.joints[:-1], cfg.joints[0], cfg.joints[-1]))
    with pytest.raises(ConfigError, match="rotation"):
        HandEye(rotation=((1, 0, 0), (0, 1, 0), (0, 0, -1)))  # a reflection
    with pytest.raises(ConfigError):
        WorkspaceBox(min=(0, 0, 0), max=(1, -1, 1))
    data = cfg.to_dict()
    data["bus"]["speed"] = 3
    with pytest.raises(ConfigError, match="speed"):
        RobotConfig.from_dict(data)
    wide = [JointCalibration(**{**j.__dict__, "lower_rad": j.lower_rad - 0.1})
            if j.name == "elbow_flex" else j for j in cfg.joints]
    with pytest.raises(ConfigError, match="exceed"):
        kinematics_for(cfg.replace(joints=tuple(wide)))


def test_toml_writer_round_trip(tmp_path):
    data = {"a": 1, "b": -2.5e-17, "s": 'q"uote\\', "flag": False, "m": [[1.0, 2.0], [3, 4]],
            "t": {"x": 0.1, "inner": {"y": "z"}}, "rows": [{"k": 1}, {"k": 2}]}
    text = toml_io.dumps(data, "header")
    assert text.startswith("# header\n")
    assert toml_io.loads(text) == data
    with pytest.raises(ConfigError):
        toml_io.dumps({"bad key": 1})
    with pytest.raises(ConfigError):
        toml_io.dumps({"x": math.nan})


# ----------------------------------------------------------------------------- units
def test_joint_steps_round_trip_with_calibration(cfg):
    bus = make_bus(BusConfig(kind="feetech", port="unused"))
    arm = Arm(bus, cfg)
    rng = np.random.default_rng(0)
    q = rng.uniform(cfg.lower, cfg.upper)
    steps = arm.to_steps(q)
    assert np.all(np.abs(arm.from_steps(steps) - q) <= math.pi / 4096 + 1e-12)
    # direction -1 (shoulder_lift) turns the servo the other way; offsets shift the centre
    lift = cfg.joints[1]
    assert lift.direction == -1
    assert arm.to_steps(np.r_[0, 0.5, np.zeros(4)])[1] < 2048 < arm.to_steps(
        np.r_[0, -0.5, np.zeros(4)])[1]
    assert arm.to_steps(np.zeros(6))[2] == round(2048 + cfg.joints[2].offset_rad * 4096 / (
        2 * math.pi))


# ----------------------------------------------------------------------------- guards
def test_joint_guard_refuses_and_clamps(cfg):
    guard = JointGuard(cfg)
    prev = np.zeros(6)
    with pytest.raises(SafetyRefusal, match="bad_goal"):
        guard.filter(np.r_[np.nan, np.zeros(5)], prev, 0.02)
    out = guard.filter(np.full(6, 50.0), cfg.upper - 0.01, 1.0)  # far beyond the limits
    np.testing.assert_allclose(out, cfg.upper)
    fast = guard.filter(np.full(6, 0.5), prev, 0.02)  # 25 rad/s asked
    np.testing.assert_allclose(fast, cfg.max_speed * 0.02)
    assert guard.clamps == {"limit": 1, "speed": 1}


def _trajectory(q: np.ndarray, dt: float = 0.02) -> JointTrajectory:
    return JointTrajectory(np.arange(1, len(q) + 1) * dt, q, np.zeros(len(q), bool))


def test_safety_layer_refuses_bad_decisions(cfg):
    kin = kinematics_for(cfg)
    layer = SafetyLayer(cfg, kin)
    home = kin.home
    with pytest.raises(SafetyRefusal, match="outside_workspace"):
        layer.check_point([0.2, 0.0, 0.5], "place")
    assert np.allclose(layer.check_point([0.2, 0.1, 0.01], "pick"), [0.2, 0.1, 0.01])
    ok = np.linspace(home, home + 0.02, 5)
    layer.check_trajectory(_trajectory(ok), home)
    too_far = ok.copy()
    too_far[-1, 0] = kin.upper[0] + 0.1
    with pytest.raises(SafetyRefusal, match="joint_limit"):
        layer.check_trajectory(_trajectory(too_far), home)
    jump = np.vstack([home, home + np.array([0.3, 0, 0, 0, 0])])  # 15 rad/s
    with pytest.raises(SafetyRefusal, match="speed_limit"):
        layer.check_trajectory(_trajectory(jump), home)
    down = kin.ik([0.2, 0.0, 0.02], tool_down=True)
    into_table = down + np.array([0.0, 0.35, 0.0, 0.0, 0.0])  # tip into the table
    assert kin.fk(into_table)[2, 3] < -0.01
    with pytest.raises(SafetyRefusal):
        layer.check_pose(into_table)


def test_joint_steps_are_clamped_and_slowed(cfg):
    kin = kinematics_for(cfg)
    layer = SafetyLayer(cfg, kin)
    target = kin.home + np.array([1.5, 0, 0, 0, 0])  # 1.5 rad of pan in one LLARVA step
    setpoints = layer.joint_step(target, kin.home, 0.1, 0.02)
    steps = np.abs(np.diff(np.vstack([kin.home, setpoints]), axis=0))
    assert np.all(steps <= cfg.max_speed[:5] * 0.02 + 1e-12)
    assert len(setpoints) > 5 and np.allclose(setpoints[-1], target)
    clamped = layer.joint_step(kin.home + np.array([9.0, 0, 0, 0, 0]), kin.home, 0.1, 0.02)
    assert clamped[-1][0] == pytest.approx(kin.upper[0]) and layer.clamped_targets == 1


def test_refusal_tags():
    assert refusal_reason(ParseError("no_match", "x")) == "parse_error"
    assert refusal_reason(DepthError("hole")) == "no_depth"
    assert refusal_reason(GeometryError("far")) == "unreachable"
    assert refusal_reason(SafetyRefusal("stalled", "slow")) == "safety:stalled"
    assert refusal_reason(BusTimeoutError(3, (3,), 2)) == "device:timeout"


# ----------------------------------------------------------------------------- arm + bus
@pytest.fixture
def bus_arm(cfg):
    received: list[tuple[int, int]] = []  # (servo id, goal steps) of every goal write
    with VirtualServoBus("feetech", cfg.ids, external_motion=True) as virtual:
        def on_write(sid, address, data):
            if address == GOAL_ADDRESS:
                received.append((sid, int.from_bytes(data, "little")))

        virtual.on_write = on_write
        bus = make_bus(cfg.bus.bus_config(port=virtual.port)).open()
        arm = Arm(bus, cfg)
        yield arm, virtual, received
        bus.close()


def test_nothing_outside_the_limits_reaches_the_servos(cfg, bus_arm):
    arm, virtual, received = bus_arm
    q0 = arm.connect()
    np.testing.assert_allclose(q0, arm.from_steps([2048] * 6))
    rng = np.random.default_rng(1)
    for _ in range(40):
        wild = rng.uniform(-20, 20, 6)
        arm.command(wild, 0.02)
    with pytest.raises(SafetyError):
        arm.command(np.full(6, np.inf))
    arm.hold()
    assert virtual.wait_requests(arm.bus.stats.packets, 2.0)
    assert len(received) == 6 * 41
    lo, hi = arm.min_steps, arm.max_steps
    index = {sid: k for k, sid in enumerate(cfg.ids)}
    last = {sid: arm.to_steps(q0)[index[sid]] for sid in cfg.ids}
    for sid, steps in received:
        k = index[sid]
        assert lo[k] <= steps <= hi[k]
        max_step = cfg.joints[k].max_speed_rad_s * 0.02 * 4096 / (2 * math.pi)
        assert abs(steps - last[sid]) <= max_step + 1
        last[sid] = steps


def test_torque_and_hold(cfg, bus_arm):
    arm, virtual, _ = bus_arm
    arm.connect()
    arm.torque(True)
    assert virtual.wait_requests(arm.bus.stats.packets, 2.0)
    assert all(virtual.torque_enabled().values())
    virtual.set_present_positions({sid: 2060 for sid in cfg.ids})  # within one speed step
    held = arm.hold()
    np.testing.assert_allclose(held, arm.from_steps([2060] * 6), atol=1e-12)
    assert np.all(arm.to_steps(arm.last_goal) == 2060)
    arm.torque(False)
    assert virtual.wait_requests(arm.bus.stats.packets, 2.0)
    assert not any(virtual.torque_enabled().values())


# ----------------------------------------------------------------------------- watchdog
def test_watchdog_holds_a_stalled_stage_once():
    held = []
    with Watchdog(held.append, poll_s=0.002) as wd:
        with wd.guard("policy", 0.05) as d:
            time.sleep(0.25)
        assert d.expired and len(held) == 1 and "policy" in held[0]
        with wd.guard("policy", 1.0) as d2:
            pass
        assert not d2.expired and len(held) == 1


def test_stop_request_is_held_by_the_watchdog_when_the_loop_is_busy():
    held = []
    with Watchdog(held.append, grace_s=0.05, poll_s=0.002) as wd:
        wd.request_stop("test")
        time.sleep(0.3)
        assert wd.stop_requested and len(held) == 1 and "test" in held[0]
    with Watchdog(held.append, grace_s=0.2, poll_s=0.002) as wd:
        wd.request_stop("quick")
        wd.acknowledge_stop()  # the loop stops by itself: no watchdog hold
        time.sleep(0.3)
        assert len(held) == 1


def test_sigterm_and_sigint_become_stop_requests():
    with Watchdog(lambda reason: None, grace_s=10) as wd:
        previous = signal.getsignal(signal.SIGTERM)
        with StopSignals(wd):
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
            deadline = time.monotonic() + 5
            while not wd.stop_requested and time.monotonic() < deadline:
                time.sleep(0.01)
        assert wd.stop_reason == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is previous


# ----------------------------------------------------------------------------- telemetry
def test_telemetry_summary_and_json(tmp_path):
    tel = Telemetry()
    values = [0.010, 0.020, 0.030, 0.040, 0.100]
    for i, v in enumerate(values):
        tel.begin_step(0, i)
        tel.add("policy", v)
        tel.add("drive", v / 2)
        tel.add("drive", v / 2)
        tel.end_step("executed")
    s = tel.summary()
    assert list(s)[:2] == ["policy", "drive"] and s["step"]["n"] == 5
    assert s["policy"]["p50_ms"] == pytest.approx(30.0)
    assert s["policy"]["p95_ms"] == pytest.approx(np.percentile(values, 95) * 1000)
    assert s["drive"]["max_ms"] == pytest.approx(100.0)
    path = tel.write_json(tmp_path / "t.json", {"run": "x"})
    data = json.loads(path.read_text())
    assert data["run"] == "x" and data["outcomes"] == {"executed": 5}
    assert "p95 ms" in tel.table()
