"""LLaVA's LLaMA -> two ONNX graphs: token embedding and the decoder with an explicit KV cache.

Contract:
    export_llm(model, out_dir, scratch) -> LlmExport
    embed.onnx  input_ids int64 [1, T] -> inputs_embeds float32 [1, T, hidden]
    llm.onnx    inputs  inputs_embeds float32 [1, T, hidden], position_ids int64 [1, T],
                        past_key_values.{i}.key / .value float32 [1, kv_heads, P, head_dim]
                        for each layer i (P may be 0)
                outputs logits float32 [1, T, vocab],
                        present.{i}.key / .value float32 [1, kv_heads, P + T, head_dim]
    LlmExport(files, layers, kv_heads, head_dim, hidden, vocab)

Batch 1, no padding, no attention_mask input: new token t (absolute index P + t) attends to
every cached position and to new tokens 0..t (causal among the T new tokens, full attention
to the past). `present` is the past with the new keys/values appended on axis 2, so a
runtime rolls back by slicing axis 2. RoPE uses `position_ids` (the caller passes P..P+T-1
for a contiguous sequence) with the model's own inv_freq and attention_scaling, in float32.

The graphs are written node by node (export/llara_export/onnx_graph.py), not traced: torch.onnx's
TorchScript exporter held the fp32 model plus ~2 traced copies, ~3.2 GB per LLaMA-7B layer
(~103 GB for 32 layers, docs/export.md), and could not trace a compact model
(models/compact.py). Here each weight is upcast to float32, transposed to MatMul's [in, out]
layout and written out one tensor at a time (export/llara_export/onnx_weights.py), so the export
costs one matrix over the model already loaded, compact or not. The graph computes what
LlamaForCausalLM computes, and tests/test_export_onnx.py compares logits, chunked prefill, rollback
and greedy answers with the torch model:
    RMSNorm    w * x / sqrt(mean(x^2) + eps)
    attention  softmax(q k^T * scaling + causal mask) v; grouped-query by broadcasting kv
               heads over their query groups (head h = kv_head * rep + r, HF's repeat_kv)
    MLP        down(silu(gate(x)) * up(x)); biases where the config has them
Anything else (another activation, RoPE frequencies that depend on the sequence length,
"dynamic"/"longrope") is refused with an ArtifactError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llara_edge.errors import ArtifactError
from llara_export import onnx_common
from llara_export.models.llava import LlavaPolicyModel
from llara_export.onnx_common import ONNX_FILES, past_names, present_names
from llara_export.onnx_graph import FLOAT, INT64, GraphBuilder, save_graph

EMBED_FILE, LLM_FILE = ONNX_FILES["embed"], ONNX_FILES["llm"]
STATIC_ROPE = ("default", "linear", "llama3", "yarn")  # inv_freq fixed at load time
ACTIVATIONS = ("silu",)
# above this the weights stream to NAME.onnx.data: an inline graph holds its weights ~4 times
# while it is converted, checked and serialised (7.0 GB peak for a 1.3 GB LLaMA-7B layer)
STREAM_BYTES = 256 << 20


@dataclass
class LlmExport:
    files: list[Path] = field(default_factory=list)
    layers: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    hidden: int = 0
    vocab: int = 0


@dataclass(frozen=True)
class _Shape:
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    vocab: int
    layers: int
    eps: float

    @property
    def rep(self) -> int:
        return self.heads // self.kv_heads


def _shape(model: LlavaPolicyModel) -> _Shape:
    cfg, rotary = model.llama_config, model.llm.model.rotary_emb
    rope_type = getattr(rotary, "rope_type", "default")
    if rope_type not in STATIC_ROPE:
        raise ArtifactError(f"unsupported RoPE type {rope_type!r} for the ONNX export "
                            f"(static frequencies only: {STATIC_ROPE})")
    if getattr(cfg, "hidden_act", "silu") not in ACTIVATIONS:
        raise ArtifactError(f"unsupported activation {cfg.hidden_act!r} for the ONNX export "
                            f"(LLaMA's {ACTIVATIONS})")
    heads = cfg.num_attention_heads
    kv_heads = cfg.num_key_value_heads or heads
    if cfg.num_hidden_layers < 1 or heads % kv_heads:
        raise ArtifactError(f"cannot export {cfg.num_hidden_layers} layers with {heads} heads "
                            f"over {kv_heads} kv heads")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return _Shape(heads, kv_heads, head_dim, cfg.hidden_size, cfg.vocab_size,
                  cfg.num_hidden_layers, float(cfg.rms_norm_eps))


def _stored(module, name: str = "weight"):
    """The tensor as stored: a compact model's 16-bit original, not an fp32 upcast of it."""
    from torch.nn.utils import parametrize

    if parametrize.is_parametrized(module, name):
        return getattr(module.parametrizations, name).original
    return getattr(module, name)


def _fp32(tensor, transpose: bool = False) -> np.ndarray:
    """float32 numpy of a stored tensor (transposed if asked), made in one allocation."""
    import torch

    source = tensor.detach().t() if transpose else tensor.detach()
    return torch.empty(source.shape, dtype=torch.float32).copy_(source).numpy()


def _linear(g: GraphBuilder, x: str, module, name: str) -> str:
    """x [..., in] @ W^T (+ b): W stored transposed, [in, out], so MatMul needs no Transpose."""
    y = g.op("MatMul", x, g.weight(f"{name}.weight", _fp32(_stored(module), transpose=True)))
    if module.bias is not None:
        y = g.op("Add", y, g.weight(f"{name}.bias", _fp32(module.bias)))
    return y


def _rms_norm(g: GraphBuilder, x: str, norm, name: str, eps: float) -> str:
    # written as torch exports rsqrt (Pow, Div(1, Sqrt)): the pattern onnxruntime fuses into
    # one SimplifiedLayerNormalization kernel (7 nodes otherwise, 1.5x the decode time)
    mean_sq = g.op("ReduceMean", g.op("Pow", x, g.floats(2.0)), g.ints([-1]), keepdims=1)
    inv = g.op("Div", g.floats(1.0), g.op("Sqrt", g.op("Add", mean_sq, g.floats(eps))))
    return g.op("Mul", g.weight(f"{name}.weight", _fp32(norm.weight)), g.op("Mul", x, inv))


def _rotate_half(g: GraphBuilder, x: str, d: int) -> str:
    """cat(-x[..., d/2:], x[..., :d/2]) along the last axis."""
    first = g.op("Slice", x, g.ints([0]), g.ints([d // 2]), g.ints([-1]))
    second = g.op("Slice", x, g.ints([d // 2]), g.ints([d]), g.ints([-1]))
    return g.op("Concat", g.op("Neg", second), first, axis=-1)


def _rope(g: GraphBuilder, x: str, cos: str, sin: str, d: int) -> str:
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", _rotate_half(g, x, d), sin))


def _cos_sin(g: GraphBuilder, rotary) -> tuple[str, str]:
    """cos, sin [1, 1, T, d] of position_ids (LlamaRotaryEmbedding.forward, float32)."""
    pos = g.op("Unsqueeze", g.op("Cast", "position_ids", to=FLOAT), g.ints([-1]))  # [1, T, 1]
    freqs = g.op("Mul", pos, g.weight("rotary.inv_freq", _fp32(rotary.inv_freq)))
    emb = g.op("Concat", freqs, freqs, axis=-1)  # [1, T, d]
    scale = float(getattr(rotary, "attention_scaling", 1.0))
    out = []
    for fn in ("Cos", "Sin"):
        wave = g.op(fn, emb)
        if scale != 1.0:
            wave = g.op("Mul", wave, g.floats([scale]))
        out.append(g.op("Unsqueeze", wave, g.ints([1])))
    return out[0], out[1]


def _causal_mask(g: GraphBuilder) -> str:
    """[T, P + T] additive mask: 0 where new token t sees position s <= P + t, else -inf."""
    new = g.op("Squeeze", g.op("Shape", "inputs_embeds", start=1, end=2), g.ints([0]))
    past = g.op("Squeeze", g.op("Shape", past_names(0)[0], start=2, end=3), g.ints([0]))
    zero, one = g.ints(0), g.ints(1)
    rows = g.op("Unsqueeze", g.op("Add", g.op("Range", zero, new, one), past), g.ints([1]))
    cols = g.op("Range", zero, g.op("Add", past, new), one)
    visible = g.op("LessOrEqual", cols, rows)
    return g.op("Where", visible, g.floats(0.0), g.floats(float("-inf")))


def _heads(g: GraphBuilder, x: str, n: int, d: int) -> str:
    """[1, T, n * d] -> [1, n, T, d]."""
    return g.op("Transpose", g.op("Reshape", x, g.ints([1, -1, n, d])), perm=[0, 2, 1, 3])


def _attention(g: GraphBuilder, x: str, attn, i: int, s: _Shape, rope: tuple, mask: str) -> str:
    """x [1, T, hidden] normed -> o_proj output; writes present.{i}.key / .value."""
    name, d = f"layers.{i}.self_attn", s.head_dim
    q = _rope(g, _heads(g, _linear(g, x, attn.q_proj, f"{name}.q_proj"), s.heads, d), *rope, d)
    k = _rope(g, _heads(g, _linear(g, x, attn.k_proj, f"{name}.k_proj"), s.kv_heads, d),
              *rope, d)
    v = _heads(g, _linear(g, x, attn.v_proj, f"{name}.v_proj"), s.kv_heads, d)
    past_k, past_v = past_names(i)
    k = g.op("Concat", past_k, k, axis=2, out=present_names(i)[0])  # [1, KV, P + T, d]
    v = g.op("Concat", past_v, v, axis=2, out=present_names(i)[1])
    if s.rep > 1:  # [1, KV, rep, T, d] against [1, KV, 1, P + T, d]
        q = g.op("Reshape", q, g.ints([1, s.kv_heads, s.rep, -1, d]))
        k, v = g.op("Unsqueeze", k, g.ints([2])), g.op("Unsqueeze", v, g.ints([2]))
    perm = [0, 1, 2, 4, 3] if s.rep > 1 else [0, 1, 3, 2]
    scale = float(getattr(attn, "scaling", d ** -0.5))
    scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=perm)), g.floats([scale]))
    probs = g.op("Softmax", g.op("Add", scores, mask), axis=-1)
    out = g.op("MatMul", probs, v)
    if s.rep > 1:
        out = g.op("Reshape", out, g.ints([1, s.heads, -1, d]))
    out = g.op("Reshape", g.op("Transpose", out, perm=[0, 2, 1, 3]), g.ints([0, 0, -1]))
    return _linear(g, out, attn.o_proj, f"{name}.o_proj")


def _mlp(g: GraphBuilder, x: str, mlp, name: str) -> str:
    gate = _linear(g, x, mlp.gate_proj, f"{name}.gate_proj")
    act = g.op("Mul", gate, g.op("Sigmoid", gate))  # silu
    return _linear(g, g.op("Mul", act, _linear(g, x, mlp.up_proj, f"{name}.up_proj")),
                   mlp.down_proj, f"{name}.down_proj")


def _decoder(g: GraphBuilder, llm, s: _Shape) -> None:
    g.input("inputs_embeds", FLOAT, [1, "new", s.hidden])
    g.input("position_ids", INT64, [1, "new"])
    for i in range(s.layers):
        for name in past_names(i):
            g.input(name, FLOAT, [1, s.kv_heads, "past", s.head_dim])
    rope, mask = _cos_sin(g, llm.model.rotary_emb), _causal_mask(g)
    hidden = "inputs_embeds"
    for i, layer in enumerate(llm.model.layers):
        normed = _rms_norm(g, hidden, layer.input_layernorm, f"layers.{i}.input_layernorm", s.eps)
        hidden = g.op("Add", hidden, _attention(g, normed, layer.self_attn, i, s, rope, mask))
        normed = _rms_norm(g, hidden, layer.post_attention_layernorm,
                           f"layers.{i}.post_attention_layernorm", s.eps)
        hidden = g.op("Add", hidden, _mlp(g, normed, layer.mlp, f"layers.{i}.mlp"))
    final = _rms_norm(g, hidden, llm.model.norm, "norm", s.eps)
    head = g.weight("lm_head.weight", _fp32(_stored(llm.lm_head), transpose=True))
    g.op("MatMul", final, head, out="logits")
    g.output("logits", FLOAT, [1, "new", s.vocab])
    for i in range(s.layers):
        for name in present_names(i):
            g.output(name, FLOAT, [1, s.kv_heads, "total", s.head_dim])


def _weight_bytes(module) -> int:
    """float32 bytes of `module`'s parameters (what its graph's initializers will weigh)."""
    return 4 * sum(p.numel() for p in module.parameters())


def _write(path: Path, build, weight_bytes: int) -> list[Path]:
    """Run build(GraphBuilder) and save; weights stream to PATH.data above STREAM_BYTES."""
    external = weight_bytes > min(STREAM_BYTES, onnx_common.EXTERNAL_DATA_BYTES)
    g = GraphBuilder(path.with_name(f"{path.name}.data") if external else None)
    try:
        build(g)
        return save_graph(g, path)
    except BaseException:
        g.sink.abort()
        raise


def export_llm(model: LlavaPolicyModel, out_dir: Path, scratch: Path | None = None) -> LlmExport:
    """Write embed.onnx and llm.onnx (see module docstring); `scratch` is unused (kept for
    the writers' common signature)."""
    s, llm = _shape(model), model.llm
    table = llm.get_input_embeddings()
    if llm.lm_head.bias is not None:
        raise ArtifactError("an lm_head with a bias is not a LLaMA head: not exportable")
    result = LlmExport(layers=s.layers, kv_heads=s.kv_heads, head_dim=s.head_dim,
                       hidden=s.hidden, vocab=s.vocab)

    def embed(g: GraphBuilder) -> None:
        g.input("input_ids", INT64, [1, "new"])
        g.op("Gather", g.weight("embed_tokens.weight", _fp32(_stored(table))), "input_ids",
             axis=0, out="inputs_embeds")
        g.output("inputs_embeds", FLOAT, [1, "new", s.hidden])

    result.files += _write(out_dir / EMBED_FILE, embed, _weight_bytes(table))
    head = llm.lm_head  # counted by its shape: a tied head is written again, as its own copy
    decoder_bytes = _weight_bytes(llm.model) - _weight_bytes(table) + 4 * head.in_features \
        * head.out_features
    result.files += _write(out_dir / LLM_FILE, lambda g: _decoder(g, llm, s), decoder_bytes)
    return result
