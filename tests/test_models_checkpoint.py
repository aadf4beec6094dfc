"""Checkpoint loading (original LLaVA layout), saving, and every bad-checkpoint error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from llara_edge.actions import PickPlaceAction
from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.formats import VICUNA_V1, LlaraPrompt, build_prompt, format_answer
from llara_export.models.checkpoint import load_checkpoint, save_original
from llara_export.models.llava import IMAGE_TOKEN_INDEX, TinyConfig, build_tiny
from llara_export.models.tokenizer import train_spm

TINY = TinyConfig(vocab_size=400, image_size=56, vision_layers=2, max_positions=512)
IDS = [1, 30, 31, IMAGE_TOKEN_INDEX, 40, 41, 42, 43]


def _corpus() -> list[str]:
    texts = []
    for i in range(120):
        a = PickPlaceAction((i % 97 / 97, i % 89 / 89), (i % 83 / 83, i % 79 / 79), i % 360 - 180,
                            object_name="red block")
        prompt = LlaraPrompt("Put the red block into the green pan.", {
            "red block": (0.3, 0.6, 0.07, 0.09), "green pan": (0.7, 0.5, 0.2, 0.2)})
        texts.append(build_prompt(VICUNA_V1, prompt.render(), format_answer([a])))
    return texts


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok")
    train_spm(_corpus(), out, vocab_size=TINY.vocab_size)
    return out


@pytest.fixture(scope="module")
def tiny():
    return build_tiny(TINY, seed=3)


@pytest.fixture()
def saved(tmp_path, tiny, tok_dir) -> Path:
    return save_original(tiny, tok_dir, tmp_path / "ckpt")


def _logits(model, seed: int = 0) -> torch.Tensor:
    px = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(torch.tensor([IDS]), px).logits


def _edit_json(path: Path, **changes) -> None:
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


def _load_error(path: Path, match: str, **kwargs) -> ArtifactError:
    with pytest.raises(ArtifactError, match=match) as info:
        load_checkpoint(path, **kwargs)
    assert "\n" not in str(info.value)  # one line
    return info.value


# ----------------------------------------------------------------------------- original layout


def test_original_round_trip_gives_identical_logits(saved, tiny):
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["architectures"] == ["LlavaLlamaForCausalLM"]
    assert cfg["mm_vision_tower"] == "clip" and cfg["mm_projector_type"] == "mlp2x_gelu"
    assert cfg["mm_hidden_size"] == TINY.vision_hidden and cfg["mm_vision_select_layer"] == -2
    assert cfg["image_aspect_ratio"] == "pad" and cfg["mm_use_im_start_end"] is False
    keys = set(load_file(saved / "model.safetensors"))
    assert {"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight",
            "model.mm_projector.0.weight", "model.mm_projector.2.bias"} <= keys
    clip_cfg = json.loads((saved / "clip" / "config.json").read_text())
    assert clip_cfg["model_type"] == "clip_vision_model"
    assert all(k.startswith("vision_model.") for k in load_file(saved / "clip/model.safetensors"))
    model, tok, info = load_checkpoint(saved)
    assert info.layout == "original" and info.clip_dir == saved / "clip"
    assert info.preprocess.image_size == 56 and info.preprocess.aspect_ratio == "pad"
    assert tok.vocab_size == TINY.vocab_size and tok.eos_id == 2
    assert torch.equal(_logits(model), _logits(tiny))


def test_sharded_safetensors_round_trip(tmp_path, tiny, tok_dir):
    out = save_original(tiny, tok_dir, tmp_path / "sharded", max_shard_bytes=400_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 3 and all((out / s).is_file() for s in shards)
    model, _, info = load_checkpoint(out)
    assert len(info.weight_files) == len(shards) + 1  # + the CLIP file
    assert torch.equal(_logits(model), _logits(tiny))


def test_pickled_bin_and_full_clip_model_dir_load(saved, tiny):
    """Old LLaVA releases: pytorch_model.bin with rotary inv_freq buffers; a CLIPModel tower."""
    state = load_file(saved / "model.safetensors")
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(32)
    torch.save(state, saved / "pytorch_model.bin")
    (saved / "model.safetensors").unlink()
    clip = saved / "clip"
    tower = load_file(clip / "model.safetensors")
    tower.update({"text_model.embeddings.token_embedding.weight": torch.zeros(4, 8),
                  "logit_scale": torch.ones(())})
    torch.save(tower, clip / "pytorch_model.bin")
    (clip / "model.safetensors").unlink()
    vision = json.loads((clip / "config.json").read_text())
    (clip / "config.json").write_text(json.dumps({"model_type": "clip", "vision_config": vision}))
    model, _, info = load_checkpoint(saved)
    assert "model.layers.0.self_attn.rotary_emb.inv_freq" in info.ignored_keys
    assert "logit_scale" in info.ignored_keys
    assert torch.equal(_logits(model), _logits(tiny))


def test_clip_dir_override_and_dtype(saved, tiny, tmp_path):
    moved = tmp_path / "elsewhere_clip"
    shutil.move(saved / "clip", moved)
    err = _load_error(saved, "missing CLIP directory")
    assert "'clip'" in str(err) and "pass --clip DIR" in str(err)
    model, _, info = load_checkpoint(saved, clip_dir=moved, dtype=torch.bfloat16)
    assert info.clip_dir == moved and model.llm.dtype == torch.bfloat16
    assert model.vision_tower.dtype == torch.bfloat16
    assert torch.allclose(_logits(model).float(), _logits(tiny), atol=0.05)


def test_save_is_atomic_and_refuses_to_clobber(tmp_path, tiny, tok_dir):
    out = tmp_path / "ck"
    with pytest.raises(ArtifactError, match="missing tokenizer"):
        save_original(tiny, tmp_path / "no_tokenizer_here", out)
    assert list(tmp_path.iterdir()) == []  # neither out nor a temporary directory
    save_original(tiny, tok_dir, out)
    with pytest.raises(ConfigError, match="overwrite"):
        save_original(tiny, tok_dir, out)
    other = build_tiny(TINY, seed=9)
    save_original(other, tok_dir / "tokenizer.model", out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    assert torch.equal(_logits(load_checkpoint(out)[0]), _logits(other))


# ----------------------------------------------------------------------------- errors


def test_unknown_projector_type(saved):
    _edit_json(saved / "config.json", mm_projector_type="qformer")
    _load_error(saved, "unknown mm_projector_type 'qformer'.*config.json")


def test_mm_hidden_size_differs_from_clip(saved):
    _edit_json(saved / "config.json", mm_hidden_size=1024)
    _load_error(saved, r"mismatched hidden sizes: mm_hidden_size 1024 .* CLIP hidden_size 128")


def test_clip_hidden_differs_from_projector_input(saved):
    _edit_json(saved / "clip" / "config.json", hidden_size=64)
    _edit_json(saved / "config.json", mm_hidden_size=64)
    _load_error(saved, r"mismatched hidden sizes in .*projector input 128 != CLIP hidden 64")


def test_projector_output_differs_from_llm_hidden(saved):
    _edit_json(saved / "config.json", hidden_size=128, head_dim=32)
    _load_error(saved, r"mismatched hidden sizes in .*projector output 256 != LLM hidden 128")


def test_truncated_safetensors(saved):
    path = saved / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    err = _load_error(saved, "corrupt or truncated safetensors file .*model.safetensors")
    assert err.__cause__ is not None


def test_pickle_that_needs_arbitrary_objects_is_refused(saved):
    state = dict(load_file(saved / "model.safetensors"))
    state["args"] = ArtifactError("a custom object: unpickling it would run code")
    torch.save(state, saved / "pytorch_model.bin")
    (saved / "model.safetensors").unlink()
    err = _load_error(saved, "refusing pickled checkpoint .*pytorch_model.bin.*weights_only=False")
    assert type(err.__cause__).__name__ == "UnpicklingError"


def test_corrupt_pickle(saved):
    (saved / "model.safetensors").unlink()
    (saved / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not really a zip")
    _load_error(saved, "corrupt or truncated pickled checkpoint .*pytorch_model.bin")


def test_unknown_architecture(saved):
    _edit_json(saved / "config.json", architectures=["MllamaForConditionalGeneration"])
    _load_error(saved, "unknown architecture .*Mllama.*known: .*LlavaLlamaForCausalLM")


def test_missing_tokenizer(saved):
    (saved / "tokenizer.model").unlink()
    err = _load_error(saved, "missing tokenizer: neither tokenizer.model .* nor tokenizer.json")
    assert "copy the tokenizer files" in str(err)


def test_missing_weights(saved):
    (saved / "model.safetensors").unlink()
    _load_error(saved, "missing weights: no model.*safetensors or pytorch_model.*bin in")


def test_missing_tensor(saved):
    state = load_file(saved / "model.safetensors")
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file(state, saved / "model.safetensors")
    _load_error(saved, "missing weights for the LLaMA language model.*layers.1.mlp.up_proj")


def test_missing_shard(tmp_path, tiny, tok_dir):
    out = save_original(tiny, tok_dir, tmp_path / "sh", max_shard_bytes=400_000)
    next(out.glob("model-00002-of-*.safetensors")).unlink()
    _load_error(out, "missing weights: shard .*model-00002-of")


def test_missing_config_and_unsupported_tower(saved, tmp_path):
    _edit_json(saved / "clip" / "config.json", model_type="siglip_vision_model")
    _load_error(saved, "unsupported vision tower type 'siglip_vision_model'")
    (saved / "config.json").unlink()
    _load_error(saved, "missing model config")
    _load_error(tmp_path / "nope", "checkpoint directory not found")
