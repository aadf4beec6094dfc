"""llava-hf layout: our loader + model reproduce transformers' LlavaForConditionalGeneration.

The reference is a randomly initialised LlavaForConditionalGeneration saved with
save_pretrained; its keys are then rewritten into each prefix scheme that real llava-hf
checkpoints use (older and newer transformers).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

from llara_edge.errors import ArtifactError
from llara_export.models.checkpoint import load_checkpoint
from llara_export.models.llava import IMAGE_TOKEN_INDEX
from llara_export.models.tokenizer import train_spm

SPM_VOCAB = 300
IMAGE_ID = SPM_VOCAB  # llava-hf appends <image> (and <pad>) after the sentencepiece pieces
N_IMAGE = 16  # (56 / 14) ** 2
PRE, POST = [1, 20, 21, 22], [23, 24, 25]


def _tower_key(k: str) -> str:
    """A tower key as the CLIPVisionModel of transformers 4.x names it."""
    return k if k.startswith("vision_model.") else "vision_model." + k


def _canonical(k: str) -> tuple[str, str]:
    """(part, rest) of a key in whatever scheme the installed transformers saved."""
    for prefix, part in (("language_model.lm_head.", "head"), ("lm_head.", "head"),
                         ("language_model.model.", "llm"), ("model.language_model.", "llm"),
                         ("model.vision_tower.", "tower"), ("vision_tower.", "tower"),
                         ("model.multi_modal_projector.", "proj"),
                         ("multi_modal_projector.", "proj")):
        if k.startswith(prefix):
            return part, k[len(prefix) :]
    raise AssertionError(k)


# scheme -> part -> prefix; tower keys with "vision_model." in both real schemes
SCHEMES = {
    "transformers<4.52": {"head": "language_model.lm_head.", "llm": "language_model.model.",
                          "tower": "vision_tower.", "proj": "multi_modal_projector."},
    "transformers>=4.52": {"head": "lm_head.", "llm": "model.language_model.",
                           "tower": "model.vision_tower.", "proj": "model.multi_modal_projector."},
}


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                              num_attention_heads=2, image_size=56, patch_size=14,
                              projection_dim=64)
    text = LlamaConfig(vocab_size=SPM_VOCAB + 2, hidden_size=128, intermediate_size=256,
                       num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=256)
    model = LlavaForConditionalGeneration(
        LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_ID,
                    image_seq_length=N_IMAGE)
    )
    with torch.no_grad():  # larger weights than HF's init, so wrong wiring shows in the logits
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.08)
    out = tmp_path_factory.mktemp("llava_hf")
    model.save_pretrained(out)
    texts = [f"USER: put the block {i} at {i * 7 % 1000} degrees ASSISTANT: ok" for i in range(200)]
    train_spm(texts, out, vocab_size=SPM_VOCAB)
    return out


@pytest.fixture(scope="module")
def reference(hf_dir):
    model = LlavaForConditionalGeneration.from_pretrained(hf_dir).eval()
    px = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([PRE + [IMAGE_ID] * N_IMAGE + POST])
    with torch.no_grad():
        logits = model(input_ids=ids, pixel_values=px).logits
        wrong_layer = model(input_ids=ids, pixel_values=px, vision_feature_layer=-1).logits
    return px, logits, wrong_layer


def _ours(path: Path, px: torch.Tensor) -> torch.Tensor:
    model, _, info = load_checkpoint(path)
    assert info.layout == "llava-hf" and info.image_token_index == IMAGE_ID
    assert info.spec.select_layer == -2 and info.spec.select_feature == "patch"
    with torch.no_grad():
        return model(torch.tensor([[*PRE, IMAGE_TOKEN_INDEX, *POST]]), px).logits


def test_as_saved_by_installed_transformers(hf_dir, reference):
    px, ref, wrong = reference
    ours = _ours(hf_dir, px)
    assert ours.shape == ref.shape == (1, len(PRE) + N_IMAGE + len(POST), SPM_VOCAB + 2)
    assert (ours - ref).abs().max() <= 1e-4
    assert (ours - wrong).abs().max() > 1e-2  # the comparison would see a wrong feature layer


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_both_key_schemes_of_real_checkpoints(hf_dir, reference, tmp_path, scheme):
    px, ref, _ = reference
    for f in hf_dir.iterdir():
        if f.suffix != ".safetensors":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    renamed = {}
    for key, value in load_file(hf_dir / "model.safetensors").items():
        part, rest = _canonical(key)
        renamed[SCHEMES[scheme][part] + (_tower_key(rest) if part == "tower" else rest)] = value
    save_file(renamed, tmp_path / "model.safetensors")
    assert (_ours(tmp_path, px) - ref).abs().max() <= 1e-4


def test_unknown_projector_activation_is_refused(hf_dir, tmp_path):
    for f in hf_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["projector_hidden_act"] = "gelu_pytorch_tanh"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match=r"unknown projector type .*gelu_pytorch_tanh"):
        load_checkpoint(tmp_path)


def test_unexpected_key_is_refused(hf_dir, tmp_path):
    for f in hf_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    state = load_file(tmp_path / "model.safetensors")
    state["image_newline"] = torch.zeros(128)  # a LLaVA-NeXT tensor
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(ArtifactError, match="unexpected weight 'image_newline'"):
        load_checkpoint(tmp_path)
