"""Every runtime module imports without the export toolchain, as on a robot.

The robot installs the runtime, drivers and kernels only (requirements/lock-runtime-*.txt): no
torch, transformers, sentencepiece, gguf, onnx, tokenizers, and no MuJoCo (the simulator is the
optional `sim` extra). A subprocess hides those packages behind a meta-path finder that raises
ModuleNotFoundError (as if they were not installed) and imports every module of the runtime,
drivers and kernels components (llara_edge, llara_drivers, llara_kernels) except the short
EXPORT_ONLY list below. A module that
needs one of them at import time is a bug: it breaks every robot (a module-level
`import sentencepiece` once did). The real robot venv is tested by tests/test_robot_profile.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package folder -> import name: the robot's three components (pyproject.toml of each)
FOLDERS = {"llara_edge": "llara_edge", "kernels/llara_kernels": "llara_kernels",
           "hw_drivers/llara_drivers": "llara_drivers"}
# What the robot does not install; `mujoco` too, since the simulator is an optional extra.
BLOCKED = ("torch", "transformers", "sentencepiece", "gguf", "onnx", "tokenizers", "mujoco")
# Modules (and packages, with everything below them) that a robot does not run. The torch
# reference, checkpoint loading and training are another component (llara_export) altogether.
EXPORT_ONLY = (
    "llara_edge.sim",  # the MuJoCo simulator (`sim` extra) and its cameras
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
    """llara_edge/robot/loop.py -> llara_edge.robot.loop;
    kernels/llara_kernels/projector.py -> llara_kernels.projector."""
    folder = next(f for f in FOLDERS if path.is_relative_to(ROOT / f))
    parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([FOLDERS[folder], *parts])


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
