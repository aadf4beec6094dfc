"""What is in control of `llara-edge run`: nothing stands in silently for what was asked.

- A missing or unreadable artifact is an ArtifactError (exit 2), never the torch reference on
  some checkpoint; the torch reference runs only as `--policy torch-reference --checkpoint`.
- A real arm refuses the simulator's camera unless named, and a hand-eye that is missing or
  the simulator's unless `--allow-uncalibrated` (then a logged WARNING).
- Devices open (and servos answer) before the policy loads; the first lines say which
  policy, camera, calibration and arm are in control.
- A refused step's telemetry keeps the answer text.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from runtime_artifact import shared_artifact

from llara_edge.cli.main import main
from llara_edge.errors import ConfigError
from llara_edge.geometry.camera import Intrinsics
from llara_edge.hw_drivers.camera_base import CameraConfig, Frame
from llara_edge.hw_drivers.file_camera.io import save_npz
from llara_edge.robot.config import HandEye, RobotConfig
from llara_edge.robot.preflight import Explicit, check_control

TASK = "Put the red block into the green pan."
SIZE = (160, 120)


def _recording(path: Path, n: int = 4) -> Path:
    """Frames of a flat table 0.55 m away (colour noise, depth with a hole)."""
    rng = np.random.default_rng(0)
    intr = Intrinsics(SIZE[0], SIZE[1], 154.0, 154.0, 80.0, 60.0)
    depth = np.full(SIZE[::-1], 0.55, np.float32)
    depth[:4, :4] = np.nan
    frames = [Frame(rng.integers(0, 255, (SIZE[1], SIZE[0], 3), np.uint8), depth, intr,
                    0.1 * i, i) for i in range(n)]
    save_npz(path, frames)
    return path


def _real_toml(tmp_path: Path, port: str, hand_eye: HandEye | None,
               camera_kind: str = "file") -> Path:
    """A robot TOML for a real arm on `port` with a file camera; without [hand_eye] when
    `hand_eye` is None."""
    base = RobotConfig.default()
    camera = CameraConfig(kind=camera_kind, width=SIZE[0], height=SIZE[1],
                          path=str(_recording(tmp_path / "frames.npz")))
    cfg = base.replace(bus=dataclasses.replace(base.bus, port=port), camera=camera,
                       hand_eye=hand_eye or base.hand_eye)
    path = cfg.save(tmp_path / "robot.toml")
    if hand_eye is None:  # drop the table
        text = path.read_text()
        start = text.index("[hand_eye]")
        end = text.index("\n[", start + 1)
        comment = text.rfind("\n#", 0, start)
        path.write_text(text[:comment + 1] + text[end + 1:])
    return path


def _real_hand_eye() -> HandEye:
    he = RobotConfig.default().hand_eye
    return dataclasses.replace(he, source="llara-edge calibrate (interactive, 9 points)",
                               rms_residual_mm=2.1, points=9, simulated=False)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["run", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


# ----------------------------------------------------------------------------- artifact
@pytest.mark.parametrize("kind", ["missing", "empty-dir", "file"])
def test_missing_artifact_is_an_error_not_a_fallback(tmp_path, capsys, kind):
    artifact = tmp_path / "art"
    if kind == "empty-dir":
        artifact.mkdir()
    elif kind == "file":
        artifact.write_text("not an export")
    rc, out, err = _run(capsys, "--artifact", str(artifact), "--episodes", "1",
                        "--out", str(tmp_path / "out"))
    assert rc == 2 and "no exported artifact" in err and str(artifact) in err
    assert "torch" not in out and "policy:" not in out  # nothing took control
    assert not (tmp_path / "out" / "telemetry.json").exists()


def test_torch_reference_runs_only_when_named(tmp_path, capsys):
    rc, _, err = _run(capsys, "--policy", "torch-reference", "--out", str(tmp_path))
    assert rc == 2 and "needs --checkpoint" in err
    rc, _, err = _run(capsys, "--checkpoint", "models/tiny-llara", "--out", str(tmp_path))
    assert rc == 2 and "only read by --policy torch-reference" in err


# ----------------------------------------------------------------------------- real arm
def test_real_arm_refuses_the_simulator_camera_before_opening_anything(tmp_path, capsys):
    # /dev/ttyACM0 does not exist here: the refusal must come before the port is opened
    rc, out, err = _run(capsys, "--arm", "feetech:/dev/ttyACM0", "--task", TASK,
                        "--out", str(tmp_path))
    assert rc == 2 and "simulator's camera" in err and "ttyACM0" in err
    assert out == ""


def test_preflight_rules():
    real = RobotConfig.default().replace(bus=dataclasses.replace(
        RobotConfig.default().bus, port="/dev/ttyUSB0"))
    filecam = real.replace(camera=CameraConfig(kind="file", path="x.npz"))
    calibrated = filecam.replace(hand_eye=_real_hand_eye())
    named = Explicit(camera_kind=True, hand_eye=True)
    assert check_control(RobotConfig.default(), Explicit()) == []  # the simulator
    with pytest.raises(ConfigError, match="simulator's camera"):
        check_control(real, Explicit(hand_eye=True))
    with pytest.raises(ConfigError, match="no \\[hand_eye\\] table"):
        check_control(filecam, Explicit(camera_kind=True))
    with pytest.raises(ConfigError, match="simulator's"):
        check_control(filecam, named)  # the bundled ground truth, copied into a TOML
    assert check_control(calibrated, named) == []
    warnings = check_control(filecam, named, allow_uncalibrated=True)
    assert len(warnings) == 1 and warnings[0].startswith("WARNING: --allow-uncalibrated")
    # a simulator camera named on purpose is allowed (with a real calibration)
    assert check_control(calibrated.replace(camera=CameraConfig(kind="sim")), named) == []


@pytest.mark.parametrize("hand_eye", ["missing", "simulated"])
def test_real_arm_needs_a_real_calibration(tmp_path, capsys, hand_eye):
    he = None if hand_eye == "missing" else RobotConfig.default().hand_eye
    toml = _real_toml(tmp_path, "/dev/ttyUSB9", he)
    rc, out, err = _run(capsys, "--robot", str(toml), "--task", TASK, "--out", str(tmp_path))
    assert rc == 2 and "needs a real hand-eye calibration" in err and out == ""


def test_a_wrong_port_fails_before_the_policy_loads(tmp_path, capsys):
    toml = _real_toml(tmp_path, "/dev/ttyUSB9-not-there", _real_hand_eye())
    rc, _, err = _run(capsys, "--robot", str(toml), "--task", TASK,
                      "--artifact", str(tmp_path / "no-artifact"), "--out", str(tmp_path))
    # the bus is opened first: the error names the port, the missing artifact is never reached
    assert rc == 2 and "ttyUSB9-not-there" in err and "no exported artifact" not in err


def _real_run(tmp_path, capsys, tmp_path_factory, hand_eye, *extra):
    from llara_edge.hw_drivers.virtual.pty_bus import VirtualServoBus

    base = RobotConfig.default()
    with VirtualServoBus("feetech", base.ids, speed_steps_s=20_000) as servos:
        toml = _real_toml(tmp_path, servos.port, hand_eye)
        rc, out, err = _run(capsys, "--robot", str(toml), "--task", TASK, "--max-steps", "2",
                            "--artifact", str(shared_artifact(tmp_path_factory)),
                            "--variant", "f16", "--draft-tokens", "0", "--max-new-tokens",
                            "48", "--no-gif",
                            "--out", str(tmp_path / "out"), *extra)
    return rc, out.splitlines(), err


def test_first_lines_say_what_is_in_control(tmp_path, capsys, tmp_path_factory):
    rc, lines, err = _real_run(tmp_path, capsys, tmp_path_factory, _real_hand_eye())
    assert rc == 0, err
    head = [line.split(":")[0] for line in lines[:4]]
    assert head == ["policy", "camera", "calibration", "arm"], lines[:5]
    assert lines[0].startswith("policy: runtime:gguf-f16+onnx from ")
    assert "manifest sha256" in lines[0]
    assert "file" in lines[1] and "intrinsics: the recording" in lines[1]
    assert "hand-eye real: llara-edge calibrate (interactive" in lines[2]
    assert "/dev/pts/" in lines[3]
    report = json.loads(lines[-1])
    assert report["mode"] == "real" and report["decisions"] == 2 and report["overrides"] == []


def test_allow_uncalibrated_is_logged(tmp_path, capsys, tmp_path_factory):
    rc, lines, err = _real_run(tmp_path, capsys, tmp_path_factory, None, "--allow-uncalibrated")
    assert rc == 0, err
    assert lines[2] == "calibration: NONE (override: --allow-uncalibrated)"
    assert lines[4].startswith("WARNING: --allow-uncalibrated: the robot TOML has no [hand_eye]")
    telemetry = json.loads(Path(json.loads(lines[-1])["telemetry"]).read_text())
    assert telemetry["events"][0]["kind"] == "override"


# ----------------------------------------------------------------------------- telemetry
def test_refused_steps_keep_the_answer_text():
    from llara_edge.robot.loop import LoopConfig, RobotLoop
    from llara_edge.robot.policy_io import PolicyOutput, TaskPrompter
    from llara_edge.robot.telemetry import Telemetry
    from llara_edge.sim.robot import SimRobot

    class Babbler:
        def act(self, rgb, user_text):
            return PolicyOutput("I would rather not pick anything up today.")

    with SimRobot(RobotConfig.default()) as robot:
        robot.reset("visual_manipulation", "L1", 0)
        loop = RobotLoop(robot.io, Babbler(), TaskPrompter(TASK), robot.cfg, robot.kin,
                         Telemetry(), loop_cfg=LoopConfig(record=False))
        try:
            rec = loop.step(0, 1)
        finally:
            loop.close()
    assert rec.outcome.startswith("refused:")
    assert rec.info["text"] == "I would rather not pick anything up today."
    assert rec.info["error"].startswith("ParseError")
