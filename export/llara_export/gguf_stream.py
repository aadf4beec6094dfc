"""The LLM GGUF straight from a checkpoint's safetensors, one tensor in memory at a time.

Contract:
    can_stream(checkpoint_dir) -> bool      # safetensors weights and a known layout
    write_llm_gguf_streamed(checkpoint_dir, tokenizer, path, ftype="f16") -> Path

The same file as export/gguf_llm.write_llm_gguf(load_checkpoint(dir)[0], ...) writes, byte
for byte (tests/test_export_gguf_stream.py compares them), without building the torch model:
the LLaMA config comes from config.json (the original layout's top level, llava-hf's
text_config), the tensor shapes from the safetensors headers, and each tensor is read,
widened to fp32 (as load_checkpoint's default dtype does), q/k-permuted for llama.cpp's
RoPE, converted and written before the next one is read (export/gguf_llm.write_gguf
streams). Peak memory is one tensor (the 32000 x 4096 embedding: 0.5 GB in fp32) instead of
the whole model in fp32 (27 GB for LLaRA-7B). Checkpoints with pickled .bin weights are
not streamed (can_stream is False): the pipeline then writes from the loaded model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from llara_edge.errors import ArtifactError, ConfigError
from llara_export.gguf_llm import (
    GLOBAL_TENSORS,
    LAYER_TENSORS,
    LLM_FTYPES,
    _add_metadata,
    check_llama,
    permute_rope,
    write_gguf,
)
from llara_export.models import checkpoint as ck
from llara_export.models import weights_io as wio
from llara_export.models.hf_tokenizer import read_json_object


class StoredTensor:
    """One tensor of a safetensors file, read (and q/k-permuted) only when written."""

    def __init__(self, file: Path, key: str, shape: tuple[int, ...], n_head: int | None):
        self.file, self.key, self.n_head = file, key, n_head
        self.shape = torch.Size(shape)

    def dim(self) -> int:
        return len(self.shape)

    def materialise(self) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(self.file), framework="pt", device="cpu") as f:
            t = f.get_tensor(self.key)
        t = t.float() if t.is_floating_point() else t
        return permute_rope(t, self.n_head) if self.n_head else t


def _llm_name(key: str, layout: str, where: Path) -> str | None:
    """The LlamaForCausalLM name of a stored key (None: not an LLM tensor)."""
    if layout == ck.ORIGINAL_ARCH:
        skip = ("model.mm_projector.", "model.vision_tower.")
        return None if key.startswith(skip) or key.endswith("rotary_emb.inv_freq") else key
    part, name = ck._hf_target(key, where)
    return name if part == "llm" and not name.endswith("rotary_emb.inv_freq") else None


def _config(ckpt: Path) -> tuple[dict, str]:
    cfg = read_json_object(ckpt / "config.json", "model config")
    arch = next((a for a in cfg.get("architectures") or [] if a in ck.LAYOUTS), None)
    if arch is None:
        raise ArtifactError(f"unknown architecture in {ckpt / 'config.json'}")
    return cfg, arch


def can_stream(ckpt: str | Path) -> bool:
    ckpt = Path(ckpt)
    try:
        _config(ckpt)
        return all(f.suffix == ".safetensors" for f in wio.weight_files(ckpt))
    except ArtifactError:
        return False


def _stored(ckpt: Path, arch: str, heads: dict[str, int]) -> dict[str, StoredTensor]:
    """LlamaForCausalLM name -> StoredTensor, from the safetensors headers only."""
    from safetensors import safe_open

    out: dict[str, StoredTensor] = {}
    for file in wio.weight_files(ckpt):
        with safe_open(str(file), framework="pt", device="cpu") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                name = _llm_name(key, arch, ckpt)
                if name is not None:
                    suffix = name.split(".", 3)[-1] if name.startswith("model.layers.") else ""
                    shape = tuple(f.get_slice(key).get_shape())
                    out[name] = StoredTensor(file, key, shape, heads.get(suffix))
    return out


def llama_config(ckpt: str | Path):
    """The language model's LlamaConfig from a checkpoint's config.json (either layout),
    checked to be a LLaMA llama.cpp can run."""
    ckpt = Path(ckpt)
    raw, arch = _config(ckpt)
    text = raw if arch == ck.ORIGINAL_ARCH else dict(raw.get("text_config") or {})
    cfg = ck._llama_config(text, ckpt / "config.json")
    check_llama(cfg)
    return cfg


def write_llm_gguf_streamed(ckpt: str | Path, tokenizer, path: str | Path, ftype: str = "f16",
                            name: str = "llara-edge policy") -> Path:
    """Write the checkpoint's LLM as a LLaMA GGUF (module docstring)."""
    if ftype not in LLM_FTYPES:
        raise ConfigError(f"unknown GGUF ftype {ftype!r}; known: {sorted(LLM_FTYPES)}")
    ckpt = Path(ckpt)
    arch = _config(ckpt)[1]
    cfg = llama_config(ckpt)
    n_kv = cfg.num_key_value_heads or cfg.num_attention_heads
    heads = {"self_attn.q_proj.weight": cfg.num_attention_heads, "self_attn.k_proj.weight": n_kv}
    stored = _stored(ckpt, arch, heads)
    if "lm_head.weight" not in stored and cfg.tie_word_embeddings:
        stored["lm_head.weight"] = stored.get("model.embed_tokens.weight")
    names = {**{hf: g for hf, g in GLOBAL_TENSORS.items()},
             **{f"model.layers.{i}.{hf}": f"blk.{i}.{g}"
                for i in range(cfg.num_hidden_layers) for hf, g in LAYER_TENSORS.items()}}
    missing = [hf for hf in names if stored.get(hf) is None]
    if missing:
        raise ArtifactError(f"missing weights: {missing[0]} not in the language model of {ckpt}")
    # the order of gguf_llm._tensors: globals, then each layer's tensors
    tensors = {g: stored[hf] for hf, g in names.items()}
    dtype, ftype_id = LLM_FTYPES[ftype]
    return write_gguf(Path(path), "llama",
                      lambda w: _add_metadata(w, cfg, tokenizer, ftype_id, name),
                      tensors, dtype, lambda _, t: t.dim() == 1)
