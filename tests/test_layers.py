"""The import graph: layers point down only, nothing goes round, a graph tool sees every edge.

- `lint-imports` (import-linter; contracts in pyproject.toml [tool.importlinter]) keeps every
  contract: components bench > export > runtime > drivers | kernels, the runtime's own layers,
  no export toolchain on the robot's side, MuJoCo only in the simulator, drivers and kernels
  import nothing above them;
- tools/import_graph.py, an independent count from the source text: 0 imports pointing up a
  component, 0 circles (lazy imports included), 0 imports grimp cannot place.
A deliberately bad import makes both fail (checked once by hand, docs/layout.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.fail("import-linter is not installed: run `bash tools/setup.sh --dev`")
    out = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_the_graph_has_no_upward_edge_no_circle_and_nothing_unplaceable():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "import_graph.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["layout"] == "workspace" and counts["modules"] > 150
    assert (counts["up"], counts["circles"], counts["unplaceable"]) == (0, 0, 0), out.stdout
