"""The robot profile: what a robot installs is what runs here, in its own venv.

`bash tools/setup.sh --dev` (the README's test command, hence CI) builds `.venv-robot` the way
tools/setup_l4t.sh sets up a Jetson: the runtime lock alone (requirements/lock-runtime-linux-
<machine>-py<XY>.txt: no torch, transformers, sentencepiece, gguf, onnx, tokenizers, MuJoCo),
the portable llama.cpp wheel with its build record, the package with --no-deps. In that venv,
as separate processes started from an empty directory (no checkout models to fall back on):
- `pip list` holds exactly the runtime lock (+ llama-cpp-python, llara-edge, pip, setuptools);
- every runtime module (test_runtime_imports' list) imports;
- `llara-edge doctor` reports the llama.cpp build flags, no torch, no MuJoCo;
- `llara-edge verify` accepts the artifact this suite exported (with the dev venv);
- `llara-edge run` on the real-robot path: a file camera replaying an .npz recording (colour,
  depth, intrinsics) and a Feetech bus on a pty, served by a `VirtualServoBus` in this test
  process, whose applied goals are audited against the robot TOML's joint limits (GoalMonitor);
- `llara-edge bench latency --quick` on the recording (a robot has no simulator frames).
A missing robot venv fails these tests (run `bash tools/setup.sh --dev`), it never skips them.
The recording is rendered once by the simulator in the dev venv, a subprocess of it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from locks import DEV_LOCK, RUNTIME_LOCK, pins
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from runtime_artifact import shared_artifact
from test_runtime_imports import BLOCKED, PROBE, runtime_modules

from llara_edge.robot.config import RobotConfig

ROOT = Path(__file__).resolve().parents[1]
ROBOT_VENV = ROOT / ".venv-robot"
NOT_ON_A_ROBOT = {canonicalize_name(n) for n in BLOCKED}
# what the venv holds besides the lock: the portable llama.cpp wheel, the components, venv's own
BESIDES_THE_LOCK = {"llama-cpp-python", "llara-edge", "llara-edge-drivers", "llara-edge-kernels",
                    "llara-edge-bench", "pip", "setuptools"}
SIZE = (320, 240)  # the bundled robot config's camera size (the tiny policy's training frames)

_RENDER = """
import sys
from llara_drivers.camera_base import CameraConfig, make_camera
from llara_drivers.file_camera.io import save_npz
cfg = CameraConfig(kind="sim", width=int(sys.argv[2]), height=int(sys.argv[3]),
                   sim_task="visual_manipulation", sim_level="L1", sim_seed=0)
with make_camera(cfg) as camera:
    frames = [camera.read() for _ in range(2)]
    instruction = camera.env.task.instruction
save_npz(sys.argv[1], frames)
print(instruction)
"""


# ------------------------------------------------------------------------- the lock itself
def test_the_runtime_lock_is_runtime_in_at_the_dev_locks_versions():
    runtime, dev = pins(RUNTIME_LOCK), pins(DEV_LOCK)
    assert not set(runtime) & NOT_ON_A_ROBOT
    assert {name: dev.get(name) for name in runtime} == runtime  # both installs agree
    wanted = [Requirement(line) for line in (ROOT / "requirements" / "runtime.in").read_text()
              .splitlines() if line.strip() and not line.startswith("#")]
    here = [r for r in wanted if r.marker is None or r.marker.evaluate()]
    assert {canonicalize_name(r.name) for r in here} <= set(runtime)
    assert all(runtime[canonicalize_name(r.name)] in r.specifier for r in here)
    assert "mujoco" in dev  # the dev set-up keeps the simulator (the `sim` extra)


# ------------------------------------------------------------------------- in the robot venv
@pytest.fixture(scope="module")
def robot_bin() -> Path:
    bin_dir = ROBOT_VENV / "bin"
    if not (bin_dir / "llara-edge").is_file():
        pytest.fail(f"no robot profile at {ROBOT_VENV}: run `bash tools/setup.sh --dev`, which "
                    f"builds it from {RUNTIME_LOCK.relative_to(ROOT)}")
    return bin_dir


def in_robot(robot_bin: Path, cwd: Path, *argv: str, timeout: float = 600
             ) -> subprocess.CompletedProcess:
    """Run bin/<argv[0]> of the robot venv in `cwd` with no trace of the dev venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{robot_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run([str(robot_bin / argv[0]), *argv[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """The session's exported tiny policy with the q4_k_m variant (run's and the bench's)."""
    from llara_bench.bench_models import with_quant_variant

    return with_quant_variant(shared_artifact(tmp_path_factory), "q4_k_m",
                              tmp_path_factory.mktemp("robot-art") / "art-q4")


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, str]:
    """(an .npz of 2 simulator frames: colour, depth, intrinsics; the episode's instruction)."""
    path = tmp_path_factory.mktemp("recording") / "table.npz"
    proc = subprocess.run([sys.executable, "-c", _RENDER, str(path), *map(str, SIZE)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path, proc.stdout.strip().splitlines()[-1]


def test_the_robot_venv_holds_exactly_the_runtime_lock(robot_bin, tmp_path):
    listed = json.loads(in_robot(robot_bin, tmp_path, "python", "-m", "pip", "list",
                                 "--format", "json").stdout)
    installed = {canonicalize_name(p["name"]): p["version"] for p in listed}
    assert not set(installed) & NOT_ON_A_ROBOT, installed
    lock = pins(RUNTIME_LOCK)
    assert {n: v for n, v in installed.items() if n not in BESIDES_THE_LOCK} == lock
    assert BESIDES_THE_LOCK - {"setuptools"} <= set(installed)
    assert in_robot(robot_bin, tmp_path, "python", "-m", "pip", "check").returncode == 0
    hidden = in_robot(robot_bin, tmp_path, "python", "-c", "import importlib.util as u; print("
                      f"[m for m in {sorted(BLOCKED)!r} if u.find_spec(m)])")
    assert hidden.stdout.strip() == "[]", hidden.stdout + hidden.stderr


def test_every_runtime_module_imports_in_the_robot_venv(robot_bin, tmp_path):
    # test_runtime_imports hides the export toolchain; here it is really absent
    proc = in_robot(robot_bin, tmp_path, "python", "-c", PROBE, "", *runtime_modules())
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {}, proc.stdout + proc.stderr


def test_doctor_reports_the_llama_build_and_no_export_toolchain(robot_bin, tmp_path):
    probes = last_json(in_robot(robot_bin, tmp_path, "llara-edge", "doctor", "--json"))
    assert probes["llama.cpp"]["ok"] and "-DGGML_NATIVE=OFF" in probes["llama.cpp"]["detail"]
    assert "no build record" not in probes["llama.cpp"]["detail"]
    assert probes["llama.cpp self-test"]["ok"], probes["llama.cpp self-test"]
    assert probes["onnxruntime"]["ok"] and probes["numba"]["ok"]
    assert not probes["torch"]["ok"] and not probes["mujoco"]["ok"]


def test_verify_accepts_the_export(robot_bin, artifact, tmp_path):
    proc = in_robot(robot_bin, tmp_path, "llara-edge", "verify", str(artifact))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every sha256 matches" in proc.stdout


def robot_toml(path: Path, recording: Path) -> RobotConfig:
    """A bench-top SO-101: the file camera, a calibrated-looking hand-eye (the simulator
    camera's pose off by a few mm, as a real calibration is), a serial port --arm replaces."""
    base = RobotConfig.default()
    hand_eye = dataclasses.replace(base.hand_eye,
                                   translation=tuple(np.add(base.hand_eye.translation,
                                                            (0.003, -0.002, 0.004))),
                                   source="llara-edge calibrate (bench-top test rig)",
                                   simulated=False)
    cfg = base.replace(
        name="so101-bench",
        bus=dataclasses.replace(base.bus, port="/dev/ttyACM0"),
        camera=dataclasses.replace(base.camera, kind="file", path=str(recording),
                                   width=SIZE[0], height=SIZE[1], loop=True),
        hand_eye=hand_eye)
    cfg.save(path)
    return RobotConfig.load(path)


def test_the_real_robot_loop_with_a_file_camera_and_a_pty_bus(robot_bin, artifact, recording,
                                                               tmp_path):
    from llara_drivers.virtual.pty_bus import VirtualServoBus
    from llara_edge.robot.monitor import GoalMonitor

    frames, instruction = recording
    cfg = robot_toml(tmp_path / "robot.toml", frames)
    with VirtualServoBus("feetech", cfg.ids) as servos:
        monitor = GoalMonitor(servos, cfg)  # every goal the servos apply vs the TOML's limits
        proc = in_robot(robot_bin, tmp_path, "llara-edge", "run", "--robot", "robot.toml",
                        "--arm", f"feetech:{servos.port}", "--artifact", str(artifact),
                        "--task", instruction, "--max-steps", "2", "--threads", "1",
                        "--out", "runs", "--no-gif")
        report = last_json(proc)
    assert (report["mode"], report["decisions"]) == ("real", 2), report
    assert report["policy"].startswith("runtime:gguf"), report["policy"]  # the artifact, no other
    assert report["stopped"] is None
    executed = report["outcomes"].get("executed", 0)
    assert executed > 0, report["outcomes"]  # the rendered table scene is reachable
    assert monitor.packets > 0 and monitor.violations == [], monitor.violations[:5]
    telemetry = json.loads((tmp_path / report["telemetry"]).read_text())
    assert len(telemetry["steps"]) == 2 and "drive" in telemetry["summary"]


def test_bench_latency_quick_on_the_recording(robot_bin, artifact, recording, tmp_path):
    frames, instruction = recording
    no_sim = in_robot(robot_bin, tmp_path, "llara-edge", "bench", "latency", "--quick",
                      "--artifact", str(artifact))
    assert no_sim.returncode == 2 and "--recording FILE" in no_sim.stderr, no_sim.stderr[-2000:]
    half = in_robot(robot_bin, tmp_path, "llara-edge", "bench", "latency", "--quick",
                    "--artifact", str(artifact), "--recording", str(frames))
    assert half.returncode == 2 and "need both a recording and the task" in half.stderr
    proc = in_robot(robot_bin, tmp_path, "llara-edge", "bench", "latency", "--quick",
                    "--artifact", str(artifact), "--recording", str(frames), "--task",
                    instruction, "--cache", "cache", "--out", "bench")
    line = last_json(proc)
    assert line["suite"] == "latency" and line["files"], line
    results = json.loads((tmp_path / line["files"][0]).read_text())
    assert results["frames"] == ["table.npz/0", "table.npz/1"]
    assert results["baselines"]["hf_generate"] is None
    assert "torch" in results["skipped_baselines"]["hf-generate"]
    assert results["metrics"]["latency.candidate.parse_failures"] == 0
    assert results["metrics"]["latency.candidate.step_p50_over_stock_gbnf"] > 0
