"""LLaVA's LLaMA language model -> a llama.cpp GGUF file (tokenizer inside), f16 or f32.

Contract:
    write_llm_gguf(model, tokenizer, path, ftype="f16", name="llara-edge policy") -> Path
    write_vocab_gguf(llama_config, tokenizer, path) -> Path   # vocab only: the runtime's tokenizer

`model` is a LlavaPolicyModel (either checkpoint layout, loaded by
llara_export.models.checkpoint); only `model.llm` (a LlamaForCausalLM) is written, with the
names and metadata of llama.cpp's `convert_hf_to_gguf.py` for the LLaMA architecture
(FORMATS.md §4): `general.architecture = "llama"`, tensors `token_embd`, `blk.N.attn_q` ...,
`output`, and q/k projection rows permuted from HF's rotate-half RoPE layout to the
interleaved layout llama.cpp's LLaMA graph uses. 1-D tensors (norms) are always f32.

The vocabulary goes in as `tokenizer.ggml.model = "llama"` (pieces, scores and token types
from the tokenizer's `vocab_entries`: a sentencepiece model's as convert_hf_to_gguf's
_create_vocab_sentencepiece, a tokenizer.json's as models/hf_tokenizer.py derives them).
When the model's embedding table has more rows than the tokenizer has pieces (llava-hf's
added `<image>` / `<pad>`), the extra rows get `[PAD{id}]` pieces of type UNUSED, as
convert_hf_to_gguf pads.
Everything that llama.cpp's LLaMA graph cannot compute exactly (biases, non-SiLU
activations, RoPE scaling) is refused with an ArtifactError instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from llara_edge.errors import ArtifactError, ConfigError
from llara_export.models.llava import LlavaPolicyModel

if TYPE_CHECKING:
    from llara_export.models.tokenizer import ExportTokenizer

# ftype name -> (numpy dtype of 2-D weights, gguf LlamaFileType value)
LLM_FTYPES: dict[str, tuple[type, int]] = {"f32": (np.float32, 0), "f16": (np.float16, 1)}

# HF LlamaForCausalLM parameter (per layer) -> GGUF tensor name (gguf.constants TENSOR_NAMES)
LAYER_TENSORS: dict[str, str] = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
GLOBAL_TENSORS: dict[str, str] = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def permute_rope(weight: torch.Tensor, n_head: int) -> torch.Tensor:
    """HF rotate-half rows -> interleaved rows (convert_hf_to_gguf LlamaModel.permute).

    weight (n_head * head_dim, in): within each head, row i < head_dim/2 pairs with
    i + head_dim/2 in HF; llama.cpp pairs rows 2i and 2i+1.
    """
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _rope_theta(cfg) -> float:
    """RoPE base of a LlamaConfig (transformers 5: rope_parameters; 4.x: rope_theta)."""
    params = getattr(cfg, "rope_parameters", None) or {}
    rope_type = params.get("rope_type", "default")
    scaling = getattr(cfg, "rope_scaling", None)
    if rope_type != "default" or (scaling and scaling.get("rope_type", "default") != "default"):
        raise ArtifactError(f"unsupported RoPE scaling {params or scaling} for the GGUF export")
    return float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))


def check_llama(cfg) -> None:
    """Refuse LLaMA variants the llama.cpp LLaMA graph would silently compute differently."""
    problems = []
    if getattr(cfg, "hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {cfg.hidden_act!r} (llama.cpp LLaMA uses SiLU)")
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
        problems.append("attention/MLP biases")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if head_dim * cfg.num_attention_heads != cfg.hidden_size:
        problems.append(f"head_dim {head_dim} x {cfg.num_attention_heads} != {cfg.hidden_size}")
    if problems:
        raise ArtifactError("unsupported LLaMA variant for GGUF: " + "; ".join(problems))


def _vocab(tokenizer: ExportTokenizer,
           n_vocab: int) -> tuple[list[bytes], list[float], list[int]]:
    """Pieces, scores and gguf TokenType values for n_vocab rows (pads added at the end)."""
    import gguf

    if tokenizer.vocab_size > n_vocab:
        raise ArtifactError(
            f"tokenizer has {tokenizer.vocab_size} pieces, the model only {n_vocab} embeddings"
        )
    entries = tokenizer.vocab_entries()
    pieces = [piece.encode("utf-8") for piece, _, _ in entries]
    scores = [score for _, score, _ in entries]
    types = [kind for _, _, kind in entries]
    for i in range(tokenizer.vocab_size, n_vocab):
        pieces.append(f"[PAD{i}]".encode())
        scores.append(-1000.0)
        types.append(int(gguf.TokenType.UNUSED))
    return pieces, scores, types


def _add_metadata(writer, cfg, tokenizer: ExportTokenizer, ftype_id: int, name: str) -> None:
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_name(name)
    writer.add_context_length(int(cfg.max_position_embeddings))
    writer.add_embedding_length(int(cfg.hidden_size))
    writer.add_block_count(int(cfg.num_hidden_layers))
    writer.add_feed_forward_length(int(cfg.intermediate_size))
    writer.add_rope_dimension_count(int(head_dim))
    writer.add_head_count(int(cfg.num_attention_heads))
    writer.add_head_count_kv(int(cfg.num_key_value_heads or cfg.num_attention_heads))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_rope_freq_base(_rope_theta(cfg))
    writer.add_vocab_size(int(cfg.vocab_size))
    writer.add_file_type(ftype_id)
    pieces, scores, types = _vocab(tokenizer, int(cfg.vocab_size))
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    for setter, token_id in ((writer.add_bos_token_id, tokenizer.bos_id),
                             (writer.add_eos_token_id, tokenizer.eos_id),
                             (writer.add_unk_token_id, tokenizer.unk_id),
                             (writer.add_pad_token_id, tokenizer.pad_id)):
        if token_id >= 0:
            setter(int(token_id))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(True)


class Permuted:
    """A q/k weight whose RoPE row permutation is applied only when the writer reaches it (a
    7B model's permuted copies would otherwise add 64 x 64 MB of fp32 before writing)."""

    def __init__(self, source: torch.Tensor, n_head: int):
        self.source, self.n_head = source, n_head
        self.shape = source.shape

    def dim(self) -> int:
        return self.source.dim()

    def materialise(self) -> torch.Tensor:
        return permute_rope(self.source, self.n_head)


def _tensors(model: LlavaPolicyModel) -> dict[str, torch.Tensor | Permuted]:
    """GGUF name -> tensor, with q/k rows permuted (lazily) for llama.cpp's RoPE."""
    cfg = model.llama_config
    state = model.llm.state_dict()
    if "lm_head.weight" not in state:  # tied embeddings
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    n_kv = cfg.num_key_value_heads or cfg.num_attention_heads
    heads = {"self_attn.q_proj.weight": cfg.num_attention_heads, "self_attn.k_proj.weight": n_kv}
    out: dict[str, torch.Tensor | Permuted] = {
        gguf_name: state[hf] for hf, gguf_name in GLOBAL_TENSORS.items()}
    for layer in range(cfg.num_hidden_layers):
        for hf, gguf_name in LAYER_TENSORS.items():
            key = f"model.layers.{layer}.{hf}"
            if key not in state:
                raise ArtifactError(f"missing weights: {key} not in the language model")
            tensor = state[key]
            out[f"blk.{layer}.{gguf_name}"] = Permuted(tensor, heads[hf]) if hf in heads \
                else tensor
    return out


def to_numpy(tensor: torch.Tensor | Permuted, dtype: type) -> np.ndarray:
    """Contiguous numpy copy in `dtype` (bf16 goes through f32: numpy has no bfloat16)."""
    # Permuted / gguf_stream.StoredTensor: produced only now, one at a time
    t = tensor.materialise() if hasattr(tensor, "materialise") else tensor
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return np.ascontiguousarray(t.numpy().astype(dtype, copy=False))


def write_gguf(path: Path, arch: str, add_metadata: Callable[[object], None],
               tensors: dict[str, torch.Tensor | Permuted], dtype: type,
               keep_f32: Callable[[str, torch.Tensor], bool]) -> Path:
    """One GGUF file: metadata from `add_metadata(writer)`, then `tensors` in `dtype` (those
    `keep_f32(name, tensor)` accepts in f32). Write errors become ArtifactError.

    Streamed: the tensor infos (name, shape, type, size) go into the header first, then each
    tensor is converted and written on its own, so the writer holds one converted tensor at a
    time instead of a converted copy of the whole model (gguf's add_tensor keeps them all)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch=arch)
    try:
        add_metadata(writer)
        types = {name: np.dtype(np.float32 if keep_f32(name, t) else dtype)
                 for name, t in tensors.items()}
        for name, tensor in tensors.items():
            shape = tuple(int(d) for d in tensor.shape)
            writer.add_tensor_info(name, shape, types[name],
                                   int(np.prod(shape)) * types[name].itemsize)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, tensor in tensors.items():  # dicts keep order: the infos' order
            writer.write_tensor_data(to_numpy(tensor, types[name].type))
    except OSError as err:
        raise ArtifactError(f"cannot write {path}: {err}") from err
    finally:
        writer.close()
    return path


def write_llm_gguf(
    model: LlavaPolicyModel,
    tokenizer: ExportTokenizer,
    path: str | Path,
    ftype: str = "f16",
    name: str = "llara-edge policy",
) -> Path:
    """Write the language model + tokenizer as a LLaMA GGUF at `path` (see module docstring)."""
    if ftype not in LLM_FTYPES:
        raise ConfigError(f"unknown GGUF ftype {ftype!r}; known: {sorted(LLM_FTYPES)}")
    dtype, ftype_id = LLM_FTYPES[ftype]
    cfg = model.llama_config
    check_llama(cfg)
    return write_gguf(Path(path), "llama",
                      lambda w: _add_metadata(w, cfg, tokenizer, ftype_id, name),
                      _tensors(model), dtype, lambda _, t: t.dim() == 1)  # norms stay f32


def write_vocab_gguf(cfg, tokenizer: ExportTokenizer, path: str | Path,
                     name: str = "llara-edge policy vocabulary") -> Path:
    """The tokenizer alone as a vocab-only LLaMA GGUF (the LLM's metadata, no tensors, as
    llama.cpp's own ggml-vocab-*.gguf): what the runtime tokenises with through llama.cpp
    (models/gguf_tokenizer.py), whatever engines and variant run and without hashing a
    multi-GB LLM file for its vocabulary. `cfg` is the LLM's LlamaConfig."""
    check_llama(cfg)
    return write_gguf(Path(path), "llama", lambda w: _add_metadata(w, cfg, tokenizer, 0, name),
                      {}, np.float32, lambda *_: False)
