"""A small exported artifact for the runtime tests (backends, policy), one per test session.

`build_artifact(checkpoint, out)` runs the real export (export.pipeline.run_export: GGUF
f16 + mmproj, the ONNX graphs, parity gate on one frame, manifest), no quantised variants.
`tiny_llara_copy(tmp)` copies the committed trained checkpoint (the training job may rewrite
models/tiny-llara meanwhile; tests depend only on agreement between paths, never on its
answers).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_LLARA = REPO / "models" / "tiny-llara"


def tiny_llara_copy(tmp: Path) -> Path:
    if not (TINY_LLARA / "config.json").is_file():
        pytest.skip(f"no trained checkpoint at {TINY_LLARA}")
    dest = tmp / "tiny-llara"
    shutil.copytree(TINY_LLARA, dest)
    return dest


def build_artifact(checkpoint: Path, out: Path, frame_size: tuple[int, int] = (64, 48)) -> Path:
    from llara_export.pipeline import ExportConfig, run_export

    report = run_export(ExportConfig(checkpoint=checkpoint, out=out, quants=(), parity_frames=1,
                                     frame_size=frame_size, max_new_tokens=8))
    assert report.ok, [r.failures for r in report.results]
    return out


def shared_artifact(tmp_path_factory) -> Path:
    """One artifact of tiny-llara per test session (built by the first module asking);
    tests that alter files work on a copy."""
    root = tmp_path_factory.getbasetemp() / "runtime-artifact"
    out = root / "art"
    if not (out / "manifest.json").is_file():
        root.mkdir(exist_ok=True)
        build_artifact(tiny_llara_copy(root), out)
    return out


def grammar_cache(tmp_path_factory) -> Path:
    """A grammar cache shared by the session's policies (compiling one takes seconds)."""
    return tmp_path_factory.getbasetemp() / "runtime-grammars"
