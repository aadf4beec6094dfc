"""Random-weight LLaVA-1.5 checkpoints with LLaRA-7B widths and a reduced depth (both layouts).

Contract:
    cfg = ShapedConfig(layout="original", llm_layers=2, clip_layers=4)   # 7B widths by default
    write_shaped(cfg, out_dir, vocab_gguf) -> Path
        out_dir/{config.json, model.safetensors, tokenizer.model, tokenizer_config.json} and,
        for the original layout, the CLIP tower as its own directory out_dir/clip/ (as
        save_original writes it); for llava-hf one LlavaForConditionalGeneration directory
        (keys model.language_model.*, lm_head.*, model.vision_tower.*,
        model.multi_modal_projector.linear_{1,2}.*, preprocessor_config.json).
    spm_model_from_gguf(vocab_gguf, out_file) -> Path
        a sentencepiece tokenizer.model built from a llama.cpp GGUF vocabulary.

Shapes (FORMATS.md; LLaVA-1.5-7B): Vicuna-7B v1.5 (vocab 32000, hidden 4096, intermediate
11008, 32 heads, MHA), CLIP ViT-L/14 at 336 px (hidden 1024, 16 heads, MLP 4096, quick_gelu,
577 tokens, select layer -2, patch features -> 576 image tokens), projector mlp2x_gelu
1024 -> 4096 -> 4096. Only the depths (`llm_layers`, `clip_layers`) differ from the real
model, so every per-layer cost measured on these checkpoints is a 7B layer's cost. llava-hf
checkpoints have 32064 embedding rows (the 32000 pieces, `<image>` = 32000, `<pad>`, padding
to a multiple of 64, as llava-hf/llava-1.5-7b-hf). Weights: transformers' random init (seeded),
stored in `dtype` (fp16 like the released checkpoints).

The tokenizer: the real LLaMA-2 vocabulary ships only as a GGUF (tests/real_vocab.py); the
export reads a sentencepiece tokenizer.model, so one is rebuilt here from the GGUF's pieces,
scores and token types with LLaMA's normaliser/trainer settings (BPE, byte fallback, dummy
prefix, identity normalisation, digits split). tests/test_models_shaped.py checks it
tokenises llama.cpp's .inp/.out cases identically.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from llara_edge.errors import ArtifactError, ConfigError

LAYOUTS = ("original", "llava-hf")
HF_VOCAB = 32064  # llava-hf/llava-1.5-7b-hf: 32000 pieces + <image> + <pad>, padded to 64
HF_IMAGE_TOKEN = 32000


@dataclass(frozen=True)
class ShapedConfig:
    """Widths of LLaRA-7B, depths reduced; every width can be shrunk for CI tests."""

    layout: str = "original"
    llm_layers: int = 2
    clip_layers: int = 4
    vocab: int = 32000
    hidden: int = 4096
    intermediate: int = 11008
    heads: int = 32
    vision_hidden: int = 1024
    vision_intermediate: int = 4096
    vision_heads: int = 16
    image_size: int = 336
    patch_size: int = 14
    max_positions: int = 4096
    seed: int = 0
    dtype: str = "float16"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.llm_layers < 1 or self.clip_layers < 2:
            raise ConfigError("need llm_layers >= 1 and clip_layers >= 2 (select layer -2)")
        if self.dtype not in ("float16", "bfloat16", "float32"):
            raise ConfigError(f"dtype must be float16, bfloat16 or float32, got {self.dtype!r}")

    @property
    def embedding_rows(self) -> int:
        return HF_VOCAB if self.layout == "llava-hf" and self.vocab == 32000 else self.vocab

    def tiny_config(self):
        """The equivalent TinyConfig (LlavaPolicyModel's generic shape config)."""
        from llara_export.models.llava import MultimodalSpec, TinyConfig

        return TinyConfig(
            vocab_size=self.embedding_rows, image_size=self.image_size,
            patch_size=self.patch_size, vision_hidden=self.vision_hidden,
            vision_layers=self.clip_layers, vision_heads=self.vision_heads,
            vision_intermediate=self.vision_intermediate, hidden=self.hidden,
            intermediate=self.intermediate, layers=self.llm_layers, heads=self.heads,
            kv_heads=self.heads, max_positions=self.max_positions,
            spec=MultimodalSpec(-2, "patch", "mlp2x_gelu"))

    def with_(self, **changes) -> ShapedConfig:
        return replace(self, **changes)


# ----------------------------------------------------------------------------- tokenizer

# LLaMA's tokenizer.model settings (normalizer_spec / trainer_spec)
_TRAINER = {"model_type": 2, "vocab_size": 32000, "byte_fallback": True, "split_digits": True,
            "split_by_unicode_script": True, "split_by_whitespace": True,
            "allow_whitespace_only_pieces": True, "unk_id": 0, "bos_id": 1, "eos_id": 2,
            "pad_id": -1, "character_coverage": 0.99995}
_NORMALIZER = {"name": "identity", "add_dummy_prefix": True, "remove_extra_whitespaces": False,
               "escape_whitespaces": True}


def _gguf_vocab(vocab_gguf: Path) -> tuple[list[str], list[float], list[int]]:
    import gguf

    try:
        reader = gguf.GGUFReader(str(vocab_gguf))
        fields = {k: reader.fields[k].contents() for k in
                  ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                   "tokenizer.ggml.token_type")}
    except (OSError, ValueError, KeyError) as err:
        raise ArtifactError(f"unreadable GGUF vocabulary {vocab_gguf}: {err}") from err
    if fields["tokenizer.ggml.model"] != "llama":
        raise ArtifactError(f"{vocab_gguf}: tokenizer model {fields['tokenizer.ggml.model']!r} "
                            "is not llama's sentencepiece")
    return (fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.scores"],
            fields["tokenizer.ggml.token_type"])


def spm_model_from_gguf(vocab_gguf: str | Path, out_file: str | Path) -> Path:
    """Write a sentencepiece ModelProto with the GGUF's pieces/scores/types (gguf TokenType
    values equal sentencepiece's piece types: 1 normal, 2 unknown, 3 control, 4 user defined,
    5 unused, 6 byte)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    tokens, scores, types = _gguf_vocab(Path(vocab_gguf))
    proto = pb.ModelProto()
    for text, score, kind in zip(tokens, scores, types, strict=True):
        proto.pieces.add(piece=text, score=float(score), type=int(kind))
    for key, value in {**_TRAINER, "vocab_size": len(tokens)}.items():
        setattr(proto.trainer_spec, key, value)
    for key, value in _NORMALIZER.items():
        setattr(proto.normalizer_spec, key, value)
    out = Path(out_file)
    part = out.with_name(out.name + f".part-{uuid.uuid4().hex[:6]}")
    part.write_bytes(proto.SerializeToString())
    os.replace(part, out)  # atomic
    return out


# ----------------------------------------------------------------------------- weights


def _random_model(cfg: ShapedConfig):
    import torch

    from llara_export.models.llava import build_tiny

    model = build_tiny(cfg.tiny_config(), seed=cfg.seed)
    return model.to(getattr(torch, cfg.dtype))


def _hf_state(model) -> dict:
    """llava-hf (transformers >= 4.52) keys of a LlavaPolicyModel."""
    from llara_export.models.checkpoint import _tower_state

    state = {}
    for key, value in model.llm.state_dict().items():
        if key.startswith("model."):
            state["model.language_model." + key[len("model."):]] = value
        else:
            state[key] = value  # lm_head.weight
    tower, _ = _tower_state(model.vision_tower.state_dict())
    state.update({f"model.vision_tower.vision_model.{k}": v for k, v in tower.items()})
    names = {"0.": "linear_1.", "2.": "linear_2."}
    for key, value in model.mm_projector.state_dict().items():
        head = key[:2]
        state[f"model.multi_modal_projector.{names[head]}{key[2:]}"] = value
    return state


def _hf_config(model, cfg: ShapedConfig) -> dict:
    from transformers import LlavaConfig

    text = model.llama_config.to_dict()
    vision = model.clip_config.to_dict()
    conf = LlavaConfig(vision_config=vision, text_config=text, image_token_index=HF_IMAGE_TOKEN,
                       vision_feature_layer=-2, vision_feature_select_strategy="default",
                       projector_hidden_act="gelu", image_seq_length=model.num_image_tokens,
                       pad_token_id=HF_IMAGE_TOKEN + 1).to_dict()
    conf["architectures"] = ["LlavaForConditionalGeneration"]
    conf["torch_dtype"] = cfg.dtype
    return conf


def _write_hf(model, cfg: ShapedConfig, tmp: Path) -> None:
    from llara_edge.models.preprocess import PreprocessConfig
    from llara_export.models import weights_io as wio
    from llara_export.models.checkpoint import _clip_files

    wio.write_safetensors(_hf_state(model), tmp)
    (tmp / "config.json").write_text(json.dumps(_hf_config(model, cfg), indent=2))
    _, _, processor = _clip_files(model, PreprocessConfig(image_size=cfg.image_size))
    (tmp / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))


def write_shaped(cfg: ShapedConfig, out_dir: str | Path, vocab_gguf: str | Path,
                 overwrite: bool = False) -> Path:
    """Write one random-weight checkpoint (module docstring); atomic (temporary sibling)."""
    from llara_edge.models.preprocess import PreprocessConfig
    from llara_export.models.checkpoint import save_original
    from llara_export.text_formats import write_text_formats

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty (pass overwrite=True)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tok_dir = out.parent / f".{out.name}.tok-{uuid.uuid4().hex[:8]}"
    try:
        tok_dir.mkdir()
        spm_model_from_gguf(vocab_gguf, tok_dir / "tokenizer.model")
        (tok_dir / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "LlamaTokenizer", "legacy": False, "add_bos_token": True,
             "clean_up_tokenization_spaces": False, "model_max_length": cfg.max_positions}))
        model = _random_model(cfg)
        if cfg.layout == "original":
            save_original(model, tok_dir, tmp,
                          preprocess=PreprocessConfig(image_size=cfg.image_size))
        else:
            tmp.mkdir()
            for f in tok_dir.iterdir():
                shutil.copyfile(f, tmp / f.name)
            _write_hf(model, cfg, tmp)
        del model
        # it stands in for LLaRA-7B, whose D-inBC training answers are numbered: the runtime
        # then decodes under "numbered", as for that checkpoint with its forms recorded
        write_text_formats(tmp, answer_forms=("numbered",))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except OSError as err:
        raise ArtifactError(f"cannot write the checkpoint {out}: {err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tok_dir, ignore_errors=True)
    return out
