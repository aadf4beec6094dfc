"""L4T / JetPack detection on fake /etc/nv_tegra_release files, the set-up plan, the doctor line,
tools/setup_l4t.sh --dry-run (through tools/setup.sh) and the jetson extra.

Nothing here runs on a Jetson: the CUDA build of llama.cpp, JetPack's tensorrt and an
onnxruntime-gpu wheel stay UNVERIFIED; what is tested is what the set-up decides and prints.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from llara_edge import l4t
from llara_edge import platform as plat
from llara_edge.llama.lib import BUILD_RECORD

ROOT = Path(__file__).resolve().parents[1]
PY_TAG = f"py{sys.version_info[0]}{sys.version_info[1]}"
R36_4_3 = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n"
R35_4_1 = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n"


def fake(tmp: Path, release: str, model: str) -> dict:
    (tmp / "nv_tegra_release").write_text(release)
    (tmp / "model").write_bytes(model.encode() + b"\x00")
    return {"LLARA_EDGE_TEGRA_RELEASE": str(tmp / "nv_tegra_release"),
            "LLARA_EDGE_DEVICE_MODEL": str(tmp / "model")}


@pytest.mark.parametrize("text, expected", [
    (R36_4_3, (36, 4, 3)), (R35_4_1, (35, 4, 1)), ("# R36 (release)\n", (36, 0, 0)),
    ("# R36 (release), REVISION: x.y\n", None), ("Ubuntu 22.04\n", None), ("", None)])
def test_parse_release(text, expected):
    assert l4t.parse_release(text) == expected


@pytest.mark.parametrize("model, arch", [
    ("NVIDIA Jetson AGX Orin Developer Kit", "87"), ("NVIDIA Jetson Orin NX 16GB", "87"),
    ("NVIDIA Jetson Xavier NX Developer Kit", "72"), ("NVIDIA Jetson AGX Thor", "110"),
    ("Some board", None)])
def test_cuda_arch_from_model(model, arch):
    assert l4t.L4t(36, 4, 3, model).cuda_arch == arch


def test_detect_and_plan(tmp_path, monkeypatch):
    assert l4t.detect(tmp_path / "absent", tmp_path / "absent") is None
    for k, v in fake(tmp_path, R36_4_3, "NVIDIA Jetson AGX Orin Developer Kit").items():
        monkeypatch.setenv(k, v)
    found = l4t.detect()
    assert (found.release, found.jetpack, found.cuda_arch) == ("R36.4.3", "6.2", "87")
    p = l4t.plan(found)
    assert p.supported and p.llama_build.endswith("--cuda on --cuda-arch 87")
    assert "CPU onnxruntime" in p.onnxruntime and "not installed" in p.torch
    assert "/w/ort.whl" in l4t.plan(found, "/w/ort.whl").onnxruntime
    old = l4t.plan(l4t.L4t(35, 4, 1, "NVIDIA Jetson AGX Orin"))
    assert not old.supported and "JetPack 5.1.2" in old.reason
    assert "not in the table" in l4t.plan(l4t.L4t(36, 9, 9, "Orin")).jetpack
    probe = plat.probe_l4t_setup()
    assert probe.ok and "JetPack 6.2" in probe.detail and "--cuda-arch 87" in probe.detail
    monkeypatch.setenv("LLARA_EDGE_TEGRA_RELEASE", str(tmp_path / "absent"))
    assert not plat.probe_l4t_setup().ok


def setup_sh(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "tools/setup.sh", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env,
                                                       "PYTHON": sys.executable})


def test_setup_dry_run_on_fake_l4t(tmp_path):
    env = fake(tmp_path, R36_4_3, "NVIDIA Jetson Orin Nano Developer Kit")
    proc = setup_sh(env, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "L4T R36.4.3, JetPack 6.2" in out and "(CUDA arch 87)" in out
    assert "+ .venv/bin/python tools/build_llama.py --version" in out and "--cuda-arch 87" in out
    # the runtime lock of this machine and python, named as tools/setup.sh names the dev lock
    assert f"-r requirements/lock-runtime-linux-{platform.machine()}-{PY_TAG}.txt\n" in out
    assert "CPU onnxruntime" in out
    # the llama.cpp build record where llara_edge.llama.lib (doctor) reads it, as setup.sh does
    record = BUILD_RECORD.relative_to(sys.prefix)
    assert f"+ cp <wheel dir>/build.json .venv/{record}\n" in out
    assert "+ echo <wheel dir>/llama_cpp_python-" in out
    assert f" > .venv/{record.parent}/llama-wheel\n" in out
    setup = (ROOT / "tools" / "setup.sh").read_text()
    assert f'"$venv/{record}"' in setup and f'"$venv/{record.parent}/llama-wheel"' in setup
    assert "torch" not in out.split("setup_l4t: torch:")[1].split("\n", 1)[1]  # never installed
    assert "dry run: nothing was run" in out
    proc = setup_sh({**env, "LLARA_EDGE_ORT_GPU_WHEEL": "/w/onnxruntime_gpu.whl"}, "--dry-run")
    assert "+ .venv/bin/python -m pip install --no-deps --disable-pip-version-check " \
           "/w/onnxruntime_gpu.whl" in proc.stdout
    old = setup_sh(fake(tmp_path, R35_4_1, "NVIDIA Jetson AGX Orin"), "--dry-run")
    assert old.returncode == 1 and "needs JetPack 6" in old.stderr
    bad = setup_sh(fake(tmp_path, "garbage\n", "x"), "--dry-run")
    assert bad.returncode == 1 and "not L4T" in bad.stderr


def test_jetson_extra_asks_pypi_for_nothing_without_jetson_wheels():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {req.split(">")[0].split("=")[0].split("[")[0].strip() for req in extras["jetson"]}
    assert not names & {"tensorrt", "onnxruntime-gpu", "torch"}
    lock = (ROOT / "requirements" / "lock-runtime-linux-aarch64-py310.txt").read_text()
    assert "\ntorch==" not in lock and "\ntensorrt" not in lock and "\nmujoco==" not in lock


def test_setup_l4t_refuses_a_python_without_a_runtime_lock(tmp_path):
    env = fake(tmp_path, R36_4_3, "NVIDIA Jetson AGX Orin Developer Kit")
    fake_py = tmp_path / "python3.9"  # a python whose version has no runtime lock
    fake_py.write_text("#!/bin/sh\n[ \"$1\" = -c ] && case \"$2\" in *version_info*) "
                       "echo 39; exit 0;; esac\nexec " + sys.executable + " \"$@\"\n")
    fake_py.chmod(0o755)
    proc = subprocess.run(["bash", "tools/setup_l4t.sh"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env, "PYTHON": str(fake_py)})
    assert proc.returncode == 1
    assert f"no runtime lock requirements/lock-runtime-linux-{platform.machine()}-py39.txt" \
        in proc.stderr and "lock-runtime-linux-aarch64-py310.txt" in proc.stderr
