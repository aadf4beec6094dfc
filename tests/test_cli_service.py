"""`llara-edge service install|status|logs|uninstall|supervise` into temp dirs (no systemd).

The unit written for a real-arm robot TOML passes `systemd-analyze verify` (skipped where the
tool is missing); a broken variant of it fails the same check, so the check can fail. The
simulator config is refused, as is an artifact that does not verify. `supervise` really runs
a llara-edge command and its output lands in the rotating log (rotation seen on disk).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_artifact import shared_artifact

from llara_edge.cli.main import main
from llara_edge.robot.config import RobotConfig

LLARA_EDGE = str(Path(sys.executable).with_name("llara-edge"))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return shared_artifact(tmp_path_factory)


def real_robot(path: Path) -> Path:
    cfg = RobotConfig.default()
    cfg = cfg.replace(name="so101-lab", bus=dataclasses.replace(cfg.bus, port="/dev/ttyUSB0"),
                      camera=dataclasses.replace(cfg.camera, kind="realsense"))
    return cfg.save(path)


def dirs(tmp: Path) -> list[str]:
    return ["--unit-dir", str(tmp / "units"), "--log-dir", str(tmp / "log")]


def analyze(unit: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)


def test_install_status_uninstall(artifact, tmp_path, capsys):
    robot = real_robot(tmp_path / "robot.toml")
    assert main(["service", "install", "--robot", str(robot), "--artifact", str(artifact),
                 *dirs(tmp_path), "--no-enable", "--run-args", "--task",
                 "Put the red cube in the bowl", "--torque-off"]) == 0
    unit = tmp_path / "units" / "llara-edge.service"
    text = unit.read_text()
    assert f"--robot {robot}" in text and "'Put the red cube in the bowl'" in text
    assert "service supervise" in text and "--torque-off" in text
    if shutil.which("systemd-analyze") is not None:
        good = analyze(unit)
        assert good.returncode == 0, good.stderr
        bad = tmp_path / "bad.service"
        exe = text.split("ExecStart=")[1].split()[0]
        bad.write_text(text.replace("Restart=on-failure", "Restart=sometimes")
                       .replace(exe, "/nonexistent/llara-edge"))
        assert analyze(bad).returncode != 0
    capsys.readouterr()
    assert main(["service", "status", *dirs(tmp_path)]) == 0
    assert "ExecStart=" in capsys.readouterr().out
    assert main(["service", "uninstall", *dirs(tmp_path)]) == 0
    assert not unit.exists()
    assert main(["service", "status", *dirs(tmp_path)]) == 3


def test_supervise_writes_a_rotating_log(artifact, tmp_path, capsys):
    log = tmp_path / "log"
    for _ in range(4):  # four runs of `llara-edge --help` (~1.5 KB each) into a 4 KiB log
        proc = subprocess.run([LLARA_EDGE, "service", "supervise", "--log-dir", str(log),
                               "--max-bytes", "4096", "--backups", "2", "--exec", "--help"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert (log / "robot.log.1").is_file()  # rotated at 4 KiB
    assert not (log / "robot.log.3").exists()  # two backups kept
    assert main(["service", "logs", "-n", "1", "--log-dir", str(log)]) == 0
    assert "exit: rc 0" in capsys.readouterr().out


def test_refuses_simulator_and_bad_artifact(artifact, tmp_path, capsys):
    sim = RobotConfig.default().save(tmp_path / "sim.toml")
    assert main(["service", "install", "--robot", str(sim), "--artifact", str(artifact),
                 *dirs(tmp_path), "--no-enable"]) == 2
    assert "is a simulator config" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    with open(broken / "tokenizer.model", "r+b") as fh:
        fh.write(b"X")
    assert main(["service", "install", "--robot", str(real_robot(tmp_path / "r.toml")),
                 "--artifact", str(broken), *dirs(tmp_path), "--no-enable"]) == 2
    assert "tokenizer.model" in capsys.readouterr().err
    assert not (tmp_path / "units").exists()
