"""The streamed LLM GGUF (export/llara_export/gguf_stream.py, no torch model) equals the GGUF
written from the loaded model (export/llara_export/gguf_llm.py, the reference) byte for byte, in
both
layouts."""

from __future__ import annotations

import pytest

pytest.importorskip("gguf")

from real_vocab import real_vocab_path

from llara_edge.errors import ArtifactError
from llara_export.gguf_llm import write_llm_gguf
from llara_export.gguf_stream import can_stream, write_llm_gguf_streamed
from llara_export.models.checkpoint import load_checkpoint
from llara_export.models.shaped import ShapedConfig, write_shaped

SMALL = ShapedConfig(llm_layers=2, clip_layers=2, hidden=256, intermediate=512, heads=4,
                     vision_hidden=64, vision_intermediate=128, vision_heads=2, image_size=56)


@pytest.mark.parametrize("layout", ["original", "llava-hf"])
def test_streamed_gguf_is_byte_identical(tmp_path, layout):
    ckpt = write_shaped(SMALL.with_(layout=layout), tmp_path / "ck", real_vocab_path())
    assert can_stream(ckpt)
    model, tok, _ = load_checkpoint(ckpt)  # fp16 weights widened to fp32
    ref = write_llm_gguf(model, tok, tmp_path / "ref.gguf", "f16")
    got = write_llm_gguf_streamed(ckpt, tok, tmp_path / "got.gguf", "f16")
    assert got.read_bytes() == ref.read_bytes()


def test_missing_tensor_and_pickles(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    ckpt = write_shaped(SMALL, tmp_path / "ck", real_vocab_path())
    _, tok, _ = load_checkpoint(ckpt)
    state = load_file(ckpt / "model.safetensors")
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file(state, ckpt / "model.safetensors")
    with pytest.raises(ArtifactError, match="up_proj"):
        write_llm_gguf_streamed(ckpt, tok, tmp_path / "x.gguf")
    (ckpt / "model.safetensors").unlink()
    torch.save(state, ckpt / "pytorch_model.bin")
    assert not can_stream(ckpt)
