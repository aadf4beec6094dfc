"""`llara-edge engines build|list|clean` without TensorRT on this machine.

The real build (export/trt_build.build_engine) needs tensorrt and a CUDA GPU and stays
UNVERIFIED here. What is tested: without tensorrt, build exits 3 and creates nothing; the
orchestration (which graphs, sidecars, list, clean) with build_engine replaced by a fake that
writes a plan file under a key of the ONNX hash, as the real one does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from runtime_artifact import shared_artifact

from llara_edge.cli.main import main


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return shared_artifact(tmp_path_factory)


def test_build_without_tensorrt_touches_nothing(artifact, tmp_path, capsys):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    cache = tmp_path / "engines"
    assert main(["engines", "build", str(artifact), "--cache", str(cache)]) == 3
    assert "tensorrt not installed" in capsys.readouterr().err
    assert not cache.exists()


def test_build_list_clean_orchestration(artifact, tmp_path, capsys, monkeypatch):
    import llara_edge.backends.trt_build as trt_build
    from llara_edge.runtime.manifest import sha256_file

    built = []

    def fake_build(onnx, cache_dir, precision, frame_hw, max_context):
        built.append((Path(onnx).name, precision, frame_hw, max_context))
        plan = Path(cache_dir) / f"{sha256_file(onnx)[:24]}.plan"
        plan.parent.mkdir(parents=True, exist_ok=True)
        plan.write_bytes(b"plan")
        return plan

    monkeypatch.setattr(trt_build, "tensorrt_status",
                        lambda: {"available": True, "version": "10.3.0", "reason": "ok"})
    monkeypatch.setattr(trt_build, "build_engine", fake_build)
    cache = tmp_path / "engines"
    assert main(["engines", "build", str(artifact), "--cache", str(cache),
                 "--frame-size", "320x240", "--max-context", "512"]) == 0
    assert [b[0] for b in built] == ["vision.onnx", "embed.onnx", "llm.onnx"]
    assert all(b[1:] == ("fp16", (240, 320), 512) for b in built)
    capsys.readouterr()
    assert main(["engines", "list", "--cache", str(cache)]) == 0
    listing = capsys.readouterr().out
    assert "3 plan(s)" in listing and "llm.onnx" in listing and "trt 10.3.0" in listing
    assert main(["engines", "clean", "--cache", str(cache), "--dry-run"]) == 0
    assert len(list(cache.glob("*.plan"))) == 3
    assert main(["engines", "clean", "--cache", str(cache)]) == 0
    assert "removed 3 plan(s)" in capsys.readouterr().out
    assert not list(cache.iterdir())
