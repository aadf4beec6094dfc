"""Compact loading (models/compact.py), its ONNX LLM, and exports without the ONNX LLM
("onnx-vision").

Checked on the committed tiny-llara (stored fp16): the compact model's logits are bit for bit
the fp32 model's, its LLM holds its matrices in 16 bits; a compact export with --formats
gguf,onnx-vision writes the same bytes and parity rows as a plain export of those formats,
lists no embed/llm.onnx, and the runtime runs it (gguf LLM + onnx vision) while an ONNX LLM
engine is refused naming the missing file; a compact export with "onnx" writes embed.onnx and
llm.onnx byte for byte as the fp32 load does, and the ONNX LLM engine runs them;
configurations that cannot work are ConfigErrors.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from runtime_artifact import tiny_llara_copy

from llara_edge.errors import ArtifactError, ConfigError
from llara_export.models.checkpoint import load_checkpoint
from llara_export.models.compact import compacted
from llara_export.pipeline import ExportConfig, run_export


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_llara_copy(tmp_path_factory.mktemp("ckpt"))


def _llm_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.llm.parameters())


def test_compact_model_computes_exactly_the_fp32_model(ckpt):
    full, tok, _ = load_checkpoint(ckpt)
    small, _, _ = load_checkpoint(ckpt, compact=True)
    assert compacted(small) and not compacted(full)
    assert _llm_bytes(small) < 0.55 * _llm_bytes(full)
    layer = small.llm.model.layers[0].self_attn.q_proj
    assert layer.weight.dtype == torch.float32  # what forward sees
    assert layer.parametrizations.weight.original.dtype == torch.float16  # what is stored
    ids = torch.tensor([tok.encode("Step 1: Pick up the <p>red block</p> at")])
    with torch.no_grad():
        assert torch.equal(full.llm(input_ids=ids).logits, small.llm(input_ids=ids).logits)


def _export(ckpt, out, compact, formats=("gguf", "onnx-vision"), quants=("q8_0",)):
    report = run_export(ExportConfig(checkpoint=ckpt, out=out, quants=quants,
                                     parity_frames=1, frame_size=(64, 48), max_new_tokens=8,
                                     formats=formats, compact=compact))
    assert report.ok, [r.failures for r in report.results]
    return report


def test_compact_export_without_the_onnx_llm(ckpt, tmp_path):
    os.environ.setdefault("MUJOCO_GL", "egl")
    plain = _export(ckpt, tmp_path / "plain", False)
    small = _export(ckpt, tmp_path / "small", True)
    rows = lambda r: [(x.name, x.max_logit_diff, x.min_cosine) for x in r.results]  # noqa: E731
    assert rows(plain) == rows(small)
    assert {"onnx-vision", "onnx-features", "f16", "q8_0"} <= {x.name for x in small.results}
    for name in ("llm-f16.gguf", "mmproj-f16.gguf", "vision.onnx", "vision_features.onnx"):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "small" / name).read_bytes()
    manifest = json.loads((tmp_path / "small" / "manifest.json").read_text())
    assert "llm" not in manifest["onnx"] and "embed" not in manifest["onnx"]
    assert not (tmp_path / "small" / "llm.onnx").exists()
    from llara_bench.bench_shaped import depths  # the LLM depth from the GGUF

    n_layers = json.loads((ckpt / "config.json").read_text())["num_hidden_layers"]
    assert depths(tmp_path / "small")[0] == n_layers

    from llara_edge.cases import sim_frames
    from llara_edge.runtime.config import RuntimeConfig
    from llara_edge.runtime.policy import Policy

    case = sim_frames(1, 160, 120, seed=3)[0]
    with Policy.load(tmp_path / "small", RuntimeConfig(variant="q8_0", threads=1,
                                                       grammar_cache_dir=None)) as policy:
        assert policy.act(case.rgb, case.user_text).action.pick is not None
    with pytest.raises(ArtifactError, match=r"embed\.onnx"):
        Policy.load(tmp_path / "small", RuntimeConfig(llm="onnx", threads=1,
                                                      grammar_cache_dir=None))


def test_compact_export_of_the_onnx_llm_is_the_fp32_one(ckpt, tmp_path):
    """llm.onnx is written tensor by tensor from the upcast weights: the same bytes."""
    from llara_edge.runtime.config import RuntimeConfig
    from llara_edge.runtime.policy import Policy

    os.environ.setdefault("MUJOCO_GL", "egl")
    plain = _export(ckpt, tmp_path / "plain", False, formats=("onnx",), quants=())
    small = _export(ckpt, tmp_path / "small", True, formats=("onnx",), quants=())
    rows = lambda r: [(x.name, x.max_logit_diff, x.min_cosine) for x in r.results]  # noqa: E731
    assert rows(plain) == rows(small) and "onnx" in {x.name for x in small.results}
    for name in ("embed.onnx", "llm.onnx"):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "small" / name).read_bytes()
    from llara_edge.cases import sim_frames

    case = sim_frames(1, 160, 120, seed=3)[0]
    with Policy.load(tmp_path / "small", RuntimeConfig(llm="onnx", threads=1,
                                                       grammar_cache_dir=None)) as policy:
        assert policy.act(case.rgb, case.user_text).action.pick is not None


def test_impossible_configurations_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="overlap"):
        ExportConfig(checkpoint=tmp_path, out=tmp_path / "o",
                     formats=("gguf", "onnx", "onnx-vision"))
