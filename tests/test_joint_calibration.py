"""Guided joint calibration (robot/joint_calibration.py, `llara-edge calibrate --joints`)
against the simulator arm behind the virtual Feetech bus.

The simulated hardware's calibration is the bundled config (`SimRobot(truth=...)`); the
calibration starts from a config whose offsets are deliberately wrong. A scripted operator
moves the MuJoCo arm by hand (torque off) and the encoders report it through the real driver.
Tolerance: one encoder step, 2 pi / 4096 = 1.53e-3 rad. The encoders quantise to the nearest
step (error <= half a step) and the torque-off arm drifts far less than that in the 20 ms of
physics after each hand move.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading

import numpy as np
import pytest

from llara_edge.cli.calibrate import run_joints
from llara_edge.cli.main import main
from llara_edge.errors import ConfigError, DeviceError
from llara_edge.robot.config import RobotConfig
from llara_edge.robot.joint_calibration import (
    REFERENCE_POSE_PROMPT,
    EnterKey,
    SweepConfig,
    calibrate_joints,
)

STEP_RAD = 2 * math.pi / 4096
NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
# (low, high) each joint is swept to, rad: inside the limits, the cup stays above the table
SWEEP = {"shoulder_pan": (-1.2, 1.0), "shoulder_lift": (-1.0, 0.5),
         "elbow_flex": (-1.2, 0.9), "wrist_flex": (-1.3, 1.2), "wrist_roll": (-1.5, 2.0),
         "gripper": (-0.1, 1.5)}


@pytest.fixture(scope="module")
def robot():
    from llara_edge.sim.robot import SimRobot

    truth = RobotConfig.default()
    with SimRobot(truth, truth=truth) as robot:
        robot.reset("visual_manipulation", "L1", 0)
        yield robot


def wrong_config(truth: RobotConfig) -> RobotConfig:
    """The bundled config with offsets off by +0.3 rad (shoulder_lift), -0.2 rad (elbow)."""
    joints = list(truth.joints)
    joints[1] = dataclasses.replace(joints[1], offset_rad=joints[1].offset_rad + 0.3)
    joints[2] = dataclasses.replace(joints[2], offset_rad=joints[2].offset_rad - 0.2)
    return truth.replace(joints=tuple(joints))


def put_arm(robot, q6) -> None:
    """The operator's hand puts the arm at q6 (5 joints + jaw, rad); 20 ms of physics."""
    from llara_edge.sim.scene import set_arm

    world = robot.env.world
    set_arm(world.model, world.data, world.index, np.asarray(q6, float))
    robot.bridge.advance(0.02)


def sweep_poses(frozen: tuple[str, ...] = ()) -> list[np.ndarray]:
    """One joint after the other: 0 -> low -> high -> 0 in 0.05 rad moves (others at 0)."""
    poses = []
    for k, name in enumerate(NAMES):
        if name in frozen:
            continue
        low, high = SWEEP[name]
        path = np.r_[np.arange(0.0, low, -0.05), np.arange(low, high, 0.05),
                     np.arange(high, 0.0, -0.05), 0.0]
        path[np.argmin(path)], path[np.argmax(path)] = low, high
        for v in path:
            q = np.zeros(6)
            q[k] = v
            poses.append(q)
    return poses


class Operator:
    """Holds the reference pose when asked (`reference`: the pose held, default zero), then
    moves the arm one sweep pose per poll of `done()`."""

    def __init__(self, robot, poses, reference=None):
        self.robot, self.poses = robot, list(poses)
        self.reference = np.zeros(6) if reference is None else np.asarray(reference, float)
        self.prompts: list[str] = []

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        put_arm(self.robot, self.reference)
        return ""

    def done(self) -> bool:
        if not self.poses:
            return True
        put_arm(self.robot, self.poses.pop(0))
        return False


def calibrate(robot, cfg, operator, **kw):
    return calibrate_joints(cfg, robot.bus, operator.ask, operator.done, tell=lambda _: None,
                            sleep=lambda _: None, **kw)


def test_reference_pose_recovers_the_true_offsets(robot):
    truth = RobotConfig.default()
    wrong = wrong_config(truth)
    operator = Operator(robot, sweep_poses())
    result = calibrate(robot, wrong, operator)
    assert operator.prompts == [REFERENCE_POSE_PROMPT]
    assert not any(robot.virtual.torque_enabled().values())  # the operator moves the arm
    for got, true, old in zip(result.config.joints, truth.joints, wrong.joints, strict=True):
        assert got.offset_rad == pytest.approx(true.offset_rad, abs=STEP_RAD), got.name
        assert got.direction == old.direction
    assert [r.old_offset_rad for r in result.joints] == [j.offset_rad for j in wrong.joints]
    # with the new offsets the present pose reads as the pose the sim arm is in
    robot.arm.cfg = result.config
    try:
        np.testing.assert_allclose(robot.arm.from_steps(
            [robot.virtual.present_positions()[i] for i in truth.ids]), robot.env.world.q,
            atol=STEP_RAD)
    finally:
        robot.arm.cfg = truth


def test_sweep_measures_each_joints_range_and_warns_on_wider_limits(robot):
    truth = RobotConfig.default()
    result = calibrate(robot, wrong_config(truth), Operator(robot, sweep_poses()))
    assert result.samples == len(sweep_poses()) + 1
    for report in result.joints:
        low, high = SWEEP[report.name]
        assert report.measured_min_rad == pytest.approx(low, abs=STEP_RAD), report.name
        assert report.measured_max_rad == pytest.approx(high, abs=STEP_RAD), report.name
    # every configured range is wider than what was swept: one warning per joint, unchanged
    assert len(result.warnings) == len(NAMES)
    assert all("exceed the measured physical range" in w for w in result.warnings)
    assert result.config.lower.tolist() == truth.lower.tolist()

    tight = calibrate(robot, truth, Operator(robot, sweep_poses()), tighten=True)
    margin = SweepConfig().margin_rad
    for joint in tight.config.joints:
        low, high = SWEEP[joint.name]
        assert joint.lower_rad == pytest.approx(low + margin, abs=STEP_RAD)
        assert joint.upper_rad == pytest.approx(high - margin, abs=STEP_RAD)


def test_a_joint_that_did_not_move_is_refused_and_nothing_written(robot, tmp_path, capsys):
    out = tmp_path / "robot.toml"
    operator = Operator(robot, sweep_poses(frozen=("wrist_roll",)))
    with pytest.raises(ConfigError, match="wrist_roll did not move"):
        run_joints(wrong_config(RobotConfig.default()), robot.bus, out, ask=operator.ask,
                   sweep_done=operator.done, sleep=lambda _: None)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert "saved" not in capsys.readouterr().out


def test_an_offset_leaving_the_step_range_is_refused(robot, tmp_path):
    # the operator holds wrist_roll at +1.0 rad instead of 0: the offset (-1.0 rad, direction
    # -1) would put the +-2.79 rad limits 3.79 rad from the servo's centre
    out = tmp_path / "robot.toml"
    operator = Operator(robot, sweep_poses(), reference=[0, 0, 0, 0, 1.0, 0])
    with pytest.raises(ConfigError, match=r"wrist_roll.*beyond half a servo turn"):
        run_joints(RobotConfig.default(), robot.bus, out, ask=operator.ask,
                   sweep_done=operator.done, sleep=lambda _: None)
    assert not out.exists()


def test_failed_reads_are_refused(tmp_path):
    class DeadBus:
        def disable_torque(self, ids):
            self.torque_off = list(ids)

        def read_positions(self, ids):
            raise DeviceError("servo 3 did not answer")

    bus, out = DeadBus(), tmp_path / "robot.toml"
    with pytest.raises(DeviceError, match="cannot read present positions: servo 3"):
        run_joints(RobotConfig.default(), bus, out, ask=lambda _: "",
                   sweep_done=lambda: True, sleep=lambda _: None)
    assert bus.torque_off == list(RobotConfig.default().ids) and not out.exists()


def test_written_toml_loads_and_round_trips(robot, tmp_path, capsys):
    out = tmp_path / "cal" / "robot.toml"
    operator = Operator(robot, sweep_poses())
    report = run_joints(wrong_config(RobotConfig.default()), robot.bus, out, ask=operator.ask,
                        sweep_done=operator.done, tighten=True, sleep=lambda _: None)
    printed = capsys.readouterr().out.strip().splitlines()
    assert json.loads(printed[-1]) == report
    table = printed.index(next(line for line in printed if line.startswith("joint ")))
    assert [line.split()[0] for line in printed[table + 1:table + 7]] == list(NAMES)
    assert sum(line.startswith("WARNING: ") for line in printed) == len(NAMES)
    loaded = RobotConfig.load(out)
    assert loaded.to_dict()["joints"] == [dataclasses.asdict(j) for j in loaded.joints]
    assert loaded.joints[1].offset_rad == pytest.approx(report["joints"]["shoulder_lift"]
                                                        ["offset_rad"], abs=1e-6)
    assert loaded.to_dict()["hand_eye"] == RobotConfig.default().to_dict()["hand_eye"]
    loaded.save(tmp_path / "again.toml")
    assert (tmp_path / "again.toml").read_text() == out.read_text()
    assert RobotConfig.load(tmp_path / "again.toml") == loaded


def test_cli_refuses_the_virtual_bus(tmp_path, capsys):
    out = tmp_path / "robot.toml"
    assert main(["calibrate", "--joints", "--out", str(out)]) == 2
    assert "real arm" in capsys.readouterr().err and not out.exists()


def test_enter_key_turns_true_once_enter_returns():
    pressed = threading.Event()
    key = EnterKey(ask=lambda _: pressed.wait(5.0))
    assert key() is False
    pressed.set()
    for _ in range(500):
        if key():
            break
        threading.Event().wait(0.01)
    assert key() is True


def test_sweep_config_is_validated():
    with pytest.raises(ConfigError):
        SweepConfig(rate_hz=0.1)
    with pytest.raises(ConfigError):
        SweepConfig(min_range_rad=0.01, margin_rad=0.01)
