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
for a contiguous sequence), with the model's own rotary module (cos/sin in float32).
Projections, norms and the MLP are the checkpoint's HF modules; only attention is written
here (grouped-query attention by broadcasting kv heads, no repeated copies of the cache),
so the graph computes what LlamaForCausalLM computes. RoPE variants whose frequencies
depend on the sequence length ("dynamic", "longrope") are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from llara_edge.errors import ArtifactError
from llara_edge.export.onnx_common import (
    ONNX_FILES,
    past_names,
    present_names,
    save_onnx,
    torch_to_onnx,
)
from llara_edge.models.llava import LlavaPolicyModel

EMBED_FILE, LLM_FILE = ONNX_FILES["embed"], ONNX_FILES["llm"]
STATIC_ROPE = ("default", "linear", "llama3", "yarn")  # inv_freq fixed at load time


@dataclass
class LlmExport:
    files: list[Path] = field(default_factory=list)
    layers: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    hidden: int = 0
    vocab: int = 0


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _Embed(nn.Module):
    def __init__(self, table: nn.Embedding):
        super().__init__()
        self.table = table

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.table(input_ids)


class _Decoder(nn.Module):
    """LlamaForCausalLM over (inputs_embeds, position_ids, k0, v0, k1, v1, ...)."""

    def __init__(self, llm):
        super().__init__()
        cfg = llm.config
        self.layers, self.norm, self.lm_head = llm.model.layers, llm.model.norm, llm.lm_head
        self.rotary = llm.model.rotary_emb
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads or cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads

    def _attention(self, attn, x, cos, sin, k_past, v_past):
        """x (1, T, hidden) normed; returns (out (1, T, hidden), k (1, KV, P+T, d), v)."""
        kv, rep, d = self.kv_heads, self.heads // self.kv_heads, self.head_dim
        q = attn.q_proj(x).view(1, -1, self.heads, d).transpose(1, 2)  # (1, H, T, d)
        k = attn.k_proj(x).view(1, -1, kv, d).transpose(1, 2)  # (1, KV, T, d)
        v = attn.v_proj(x).view(1, -1, kv, d).transpose(1, 2)
        cos, sin = cos[:, None], sin[:, None]  # (1, 1, T, d)
        q = q * cos + _rotate_half(q) * sin
        k = torch.cat((k_past, k * cos + _rotate_half(k) * sin), dim=2)
        v = torch.cat((v_past, v), dim=2)
        n_new, n_all = q.shape[2], k.shape[2]
        # new token t sits at absolute index P + t and sees positions 0 .. P + t
        rows = torch.arange(n_new, device=x.device)[:, None] + (n_all - n_new)
        visible = torch.arange(n_all, device=x.device)[None, :] <= rows  # (T, P + T)
        qg = q.reshape(1, kv, rep, n_new, d)  # head h = kv_head * rep + r (HF repeat_kv)
        scores = torch.matmul(qg, k[:, :, None].transpose(-1, -2)) * attn.scaling
        scores = scores.masked_fill(~visible, float("-inf"))  # (1, KV, rep, T, P + T)
        out = torch.matmul(torch.softmax(scores, dim=-1), v[:, :, None])  # (1, KV, rep, T, d)
        out = out.reshape(1, self.heads, n_new, d).transpose(1, 2).reshape(1, n_new, -1)
        return attn.o_proj(out), k, v

    def forward(self, inputs_embeds, position_ids, *past):
        cos, sin = self.rotary(inputs_embeds, position_ids)  # (1, T, d) each
        hidden, presents = inputs_embeds, []
        for i, layer in enumerate(self.layers):
            out, k, v = self._attention(layer.self_attn, layer.input_layernorm(hidden), cos, sin,
                                        past[2 * i], past[2 * i + 1])
            hidden = hidden + out
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
            presents += [k, v]
        return (self.lm_head(self.norm(hidden)), *presents)


def _check(model: LlavaPolicyModel) -> None:
    rope_type = getattr(model.llm.model.rotary_emb, "rope_type", "default")
    if rope_type not in STATIC_ROPE:
        raise ArtifactError(f"unsupported RoPE type {rope_type!r} for the ONNX export "
                            f"(static frequencies only: {STATIC_ROPE})")
    if next(model.llm.parameters()).dtype != torch.float32:
        raise ArtifactError("the ONNX export traces a float32 model (load it with float32)")


def _decoder_io(n_layers: int) -> tuple[list[str], list[str], dict]:
    inputs, outputs = ["inputs_embeds", "position_ids"], ["logits"]
    axes: dict[str, dict[int, str]] = {"inputs_embeds": {1: "new"}, "position_ids": {1: "new"},
                                       "logits": {1: "new"}}
    for i in range(n_layers):
        inputs += past_names(i)
        outputs += present_names(i)
        axes.update({name: {2: "past"} for name in past_names(i)})
        axes.update({name: {2: "total"} for name in present_names(i)})
    return inputs, outputs, axes


def export_llm(model: LlavaPolicyModel, out_dir: Path, scratch: Path) -> LlmExport:
    """Write embed.onnx and llm.onnx (see module docstring)."""
    _check(model)
    decoder = _Decoder(model.llm)
    cfg = model.llama_config
    n_layers, hidden = cfg.num_hidden_layers, cfg.hidden_size
    result = LlmExport(layers=n_layers, kv_heads=decoder.kv_heads, head_dim=decoder.head_dim,
                       hidden=hidden, vocab=cfg.vocab_size)
    ids = torch.zeros(1, 3, dtype=torch.long)
    embed = torch_to_onnx(_Embed(model.llm.get_input_embeddings()), (ids,), ["input_ids"],
                          ["inputs_embeds"], {"input_ids": {1: "new"},
                                              "inputs_embeds": {1: "new"}}, scratch / EMBED_FILE)
    result.files += save_onnx(embed, out_dir / EMBED_FILE)
    # trace with P = 2 past and T = 3 new positions, so neither length is baked in
    past = [torch.zeros(1, decoder.kv_heads, 2, decoder.head_dim) for _ in range(2 * n_layers)]
    args = (torch.zeros(1, 3, hidden), torch.arange(2, 5)[None], *past)
    graph = torch_to_onnx(decoder, args, *_decoder_io(n_layers), scratch / LLM_FILE)
    result.files += save_onnx(graph, out_dir / LLM_FILE)
    return result
