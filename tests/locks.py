"""The lock files of this machine and Python, read as {canonical name: version}.

    DEV_LOCK      requirements/lock-linux-<machine>-py<XY>.txt (tools/setup.sh's .venv)
    RUNTIME_LOCK  requirements/lock-runtime-linux-<machine>-py<XY>.txt (the robot profile)
    pins(lock) -> {name: version} of its `name==version` lines (PEP 503 names)
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"
TAG = f"linux-{platform.machine()}-py{sys.version_info[0]}{sys.version_info[1]}"
DEV_LOCK = REQUIREMENTS / f"lock-{TAG}.txt"
RUNTIME_LOCK = REQUIREMENTS / f"lock-runtime-{TAG}.txt"


def pins(lock: Path) -> dict[str, str]:
    out = {}
    for line in lock.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version.strip()
    return out
