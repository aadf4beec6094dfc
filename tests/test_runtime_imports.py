"""Every runtime module imports without the export toolchain, as on a robot.

The robot installs the runtime, drivers and kernels only (requirements/lock-runtime-*.txt): no
torch, transformers, sentencepiece, gguf, onnx, tokenizers, and no MuJoCo (the simulator is the
optional `sim` extra). A subprocess hides those packages behind a meta-path finder that raises
ModuleNotFoundError (as if they were not installed) and imports every module under
llara_edge/, kernels/ and hw_drivers/ except the short EXPORT_ONLY list below. A module that
needs one of them at import time is a bug: it breaks every robot (a module-level
`import sentencepiece` once did). The real robot venv is tested by tests/test_robot_profile.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# repository folder -> import name (setup.py installs the folders under `llara_edge`)
FOLDERS = {"llara_edge": "llara_edge", "kernels": "llara_edge.kernels",
           "hw_drivers": "llara_edge.hw_drivers"}
# What the robot does not install; `mujoco` too, since the simulator is an optional extra.
BLOCKED = ("torch", "transformers", "sentencepiece", "gguf", "onnx", "tokenizers", "mujoco")
# Modules (and packages, with everything below them) that only a workstation imports.
EXPORT_ONLY = (
    "llara_edge.models.llava",  # the torch reference model (LlavaPolicyModel)
    "llara_edge.models.checkpoint",  # loading LLaVA / llava-hf checkpoints (torch, transformers)
    "llara_edge.models.compact",  # 16-bit weights kept as stored, for export (torch)
    "llara_edge.models.weights_io",  # torch tensors <-> weight files (export, checkpoints)
    "llara_edge.backends.torch_backend",  # the torch backend: the reference, export parity
    "llara_edge.backends.torch_ref",  # HF generate baseline (torch, transformers)
    "llara_edge.training",  # training the tiny policy (torch, sentencepiece)
    "llara_edge.sim",  # the MuJoCo simulator (`sim` extra)
    "llara_edge.hw_drivers.sim_camera",  # cameras rendered by that simulator
)

PROBE = """
import importlib, importlib.abc, json, sys, traceback
BLOCKED = set(sys.argv[1].split(","))

class NotOnTheRobot(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not on the robot)", name=name)

sys.meta_path.insert(0, NotOnTheRobot())
failures = {}
for module in sys.argv[2:]:
    try:
        importlib.import_module(module)
    except BaseException as exc:
        failures[module] = traceback.format_exception_only(exc)[-1].strip()
print(json.dumps(failures))
"""


def _excluded(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in EXPORT_ONLY)


def module_name(path: Path) -> str:
    """llara_edge/robot/loop.py -> llara_edge.robot.loop; kernels/x.py -> llara_edge.kernels.x."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([FOLDERS[parts[0]], *parts[1:]])


def runtime_modules() -> list[str]:
    names = {module_name(p) for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")}
    return sorted(n for n in names if not _excluded(n))


def test_the_export_only_list_names_real_modules():
    every = {module_name(p) for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")}
    assert set(EXPORT_ONLY) <= every
    assert len(runtime_modules()) > 100  # the walk found the runtime, not an empty folder


def test_every_runtime_module_imports_without_the_export_toolchain(tmp_path):
    modules = runtime_modules()
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(BLOCKED), *modules],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "runtime modules that need an export-only package:\n" + "\n".join(
        f"  {m}: {why}" for m, why in failures.items())
