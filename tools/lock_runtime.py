"""Write the robot's runtime lock from requirements/runtime.in at the dev lock's versions.

    python tools/lock_runtime.py      # with the python of the platform to lock (the dev venv's)
    -> requirements/lock-runtime-linux-<machine>-py<XY>.txt

pip resolves runtime.in (`pip install --dry-run --ignore-installed --report`, nothing is
installed) with requirements/lock-linux-<machine>-py<XY>.txt as constraints, so every runtime
pin is the dev lock's pin: the robot profile and the dev set-up run the same versions.
llama-cpp-python is not in either lock (tools/build_llama.py builds it). tools/setup.sh
--latest calls this after rewriting the dev lock; the stdlib only, so any venv with pip can run
it.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"


def lock_paths() -> tuple[Path, Path]:
    """(dev lock, runtime lock) of this machine and Python."""
    tag = f"linux-{platform.machine()}-py{sys.version_info[0]}{sys.version_info[1]}"
    return REQ / f"lock-{tag}.txt", REQ / f"lock-runtime-{tag}.txt"


def resolve(dev_lock: Path) -> list[str]:
    """`name==version` of runtime.in and its dependencies, constrained to the dev lock."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                        "--ignore-installed", "--report", str(report),
                        "-r", str(REQ / "runtime.in"), "-c", str(dev_lock)], check=True)
        installs = json.loads(report.read_text())["install"]
    pins = [f"{i['metadata']['name']}=={i['metadata']['version']}" for i in installs]
    return sorted(pins, key=str.lower)


def main() -> int:
    dev_lock, runtime_lock = lock_paths()
    if not dev_lock.is_file():
        print(f"lock_runtime: no dev lock {dev_lock.relative_to(ROOT)}", file=sys.stderr)
        return 1
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    header = [
        f"# The robot's runtime (Linux {platform.machine()}, Python {py}): runtime.in at the "
        "versions of",
        f"# {dev_lock.name}, so both installs agree. No torch, transformers, sentencepiece,",
        "# gguf, onnx, tokenizers or MuJoCo. Written by tools/lock_runtime.py; llama-cpp-python",
        "# is built by tools/build_llama.py. tools/setup.sh --dev builds .venv-robot from this",
        "# file alone and tests/test_robot_profile.py runs the robot's commands in it.",
    ]
    part = runtime_lock.with_suffix(".part")
    part.write_text("\n".join([*header, *resolve(dev_lock)]) + "\n")
    part.replace(runtime_lock)
    print(f"lock_runtime: wrote {runtime_lock.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
