"""LLaVA-1.5 in torch: CLIP vision tower + projector + LLaMA, with LLaVA's exact semantics.

Contract (stable API, also used by `llara_edge.training`):

    spec  = MultimodalSpec(select_layer=-2, select_feature="patch", projector_type="mlp2x_gelu")
    model = LlavaPolicyModel(clip_config, llama_config, spec)
    model.vision_tower   transformers CLIPVisionModel
    model.mm_projector   nn.Sequential(Linear(mm_hidden, hidden), GELU(erf),
                         Linear(hidden, hidden)) (state-dict keys 0.weight 0.bias 2.weight
                         2.bias), or one Linear for "linear"
    model.llm            transformers LlamaForCausalLM
    model.encode_images(pixel_values (B, 3, S, S)) -> (B, N, hidden)   N = (S / patch)^2
    model.embed(input_ids (B, L) with IMAGE_TOKEN_INDEX placeholders, image_features)
        -> inputs_embeds (B, L - k + k * N, hidden), each placeholder replaced by N features
    model.prepare_multimodal(input_ids, image_features, labels=None, attention_mask=None)
        -> MultimodalBatch (LLaVA's prepare_inputs_labels_for_multimodal: padding removed by
           attention_mask, image positions labelled IGNORE_INDEX, rows right-padded again)
    model(input_ids, pixel_values, labels=None, attention_mask=None) -> LlavaOutput(logits, loss)
    model.generate_greedy(input_ids (1, L), pixel_values (1, 3, S, S), max_new_tokens=256,
        eos_token_id=2) -> list[int]: the new tokens, token-identical to
        `model.llm.generate(inputs_embeds=model.embed(...), do_sample=False, num_beams=1,
        max_new_tokens=...)` (eos included when produced), using the KV cache.
    build_tiny(TinyConfig(vocab_size=...)) -> a randomly initialised small LlavaPolicyModel.

Image features of batch row i are consumed in order: placeholders are filled row-major from
`image_features` (as LLaVA's `cur_image_idx`). Source: haotian-liu/LLaVA
`llava/model/llava_arch.py` (prepare_inputs_labels_for_multimodal),
`llava/model/multimodal_encoder/clip_encoder.py` (feature_select),
`llava/model/multimodal_projector/builder.py` (build_vision_projector).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

from llara_edge.errors import ConfigError
from llara_edge.formats.templates import IMAGE_TOKEN_INDEX

# llava/constants.py
IGNORE_INDEX = -100

# select_feature -> how many leading tokens (CLS) are dropped from the CLIP hidden states.
SELECT_FEATURES: dict[str, int] = {"patch": 1, "cls_patch": 0}
_MLP_GELU_RE = re.compile(r"^mlp(\d+)x_gelu$")


@dataclass(frozen=True)
class MultimodalSpec:
    """How LLaVA turns CLIP hidden states into LLM embeddings (config.json `mm_*` keys)."""

    select_layer: int = -2
    select_feature: str = "patch"
    projector_type: str = "mlp2x_gelu"

    def __post_init__(self) -> None:
        if self.select_feature not in SELECT_FEATURES:
            raise ConfigError(
                f"unknown mm_vision_select_feature {self.select_feature!r}; "
                f"known: {sorted(SELECT_FEATURES)}"
            )
        if not isinstance(self.select_layer, int):
            raise ConfigError(f"mm_vision_select_layer must be an int, got {self.select_layer!r}")
        projector_depth(self.projector_type)


def projector_depth(projector_type: str) -> int:
    """Number of Linear layers of a LLaVA projector type ("linear" -> 1, "mlp2x_gelu" -> 2)."""
    if projector_type == "linear":
        return 1
    m = _MLP_GELU_RE.match(projector_type)
    if m and int(m.group(1)) >= 1:
        return int(m.group(1))
    raise ConfigError(
        f"unknown mm_projector_type {projector_type!r}; known: 'linear', 'mlp<N>x_gelu'"
    )


def build_projector(projector_type: str, mm_hidden: int, hidden: int) -> nn.Module:
    """LLaVA's build_vision_projector: Linear, or Linear (GELU Linear)* with exact-erf GELU."""
    depth = projector_depth(projector_type)
    if projector_type == "linear":
        return nn.Linear(mm_hidden, hidden)
    layers: list[nn.Module] = [nn.Linear(mm_hidden, hidden)]
    for _ in range(1, depth):
        layers += [nn.GELU(), nn.Linear(hidden, hidden)]
    return nn.Sequential(*layers)


@dataclass
class MultimodalBatch:
    """LLM inputs after image expansion; labels / attention_mask are None when not given."""

    inputs_embeds: torch.Tensor  # (B, T, hidden)
    labels: torch.Tensor | None  # (B, T), IGNORE_INDEX on image and padding positions
    attention_mask: torch.Tensor | None  # (B, T) bool


@dataclass
class LlavaOutput:
    logits: torch.Tensor  # (B, T, vocab)
    loss: torch.Tensor | None


class LlavaPolicyModel(nn.Module):
    """CLIPVisionModel + projector + LlamaForCausalLM, wired as LLaVA-1.5."""

    def __init__(
        self,
        clip_config: CLIPVisionConfig,
        llama_config: LlamaConfig,
        spec: MultimodalSpec | None = None,
    ):
        super().__init__()
        self.spec = spec or MultimodalSpec()
        n_layers = clip_config.num_hidden_layers
        if not -(n_layers + 1) <= self.spec.select_layer <= n_layers:
            raise ConfigError(
                f"select_layer {self.spec.select_layer} outside a {n_layers}-layer CLIP tower"
            )
        self.vision_tower = CLIPVisionModel(clip_config)
        self.mm_projector = build_projector(
            self.spec.projector_type, clip_config.hidden_size, llama_config.hidden_size
        )
        self.llm = LlamaForCausalLM(llama_config)

    @property
    def clip_config(self) -> CLIPVisionConfig:
        return self.vision_tower.config

    @property
    def llama_config(self) -> LlamaConfig:
        return self.llm.config

    @property
    def num_image_tokens(self) -> int:
        cfg = self.clip_config
        n_patches = (cfg.image_size // cfg.patch_size) ** 2
        return n_patches + 1 - SELECT_FEATURES[self.spec.select_feature]

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised pixels -> (B, N, hidden) projected image features."""
        tower_dtype = self.vision_tower.dtype
        out = self.vision_tower(pixel_values.to(tower_dtype), output_hidden_states=True)
        feats = out.hidden_states[self.spec.select_layer]  # (B, 1 + P, mm_hidden)
        feats = feats[:, SELECT_FEATURES[self.spec.select_feature] :]
        proj_dtype = next(self.mm_projector.parameters()).dtype
        return self.mm_projector(feats.to(proj_dtype))

    def _expand_row(
        self, ids: torch.Tensor, labels: torch.Tensor | None, feats: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One row: text embeddings with each placeholder replaced by the next image's features."""
        embed_tokens = self.llm.get_input_embeddings()
        cuts = [-1, *torch.where(ids == IMAGE_TOKEN_INDEX)[0].tolist(), ids.shape[0]]
        text_ids = [ids[cuts[i] + 1 : cuts[i + 1]] for i in range(len(cuts) - 1)]
        text_emb = embed_tokens(torch.cat(text_ids)).split([len(t) for t in text_ids])
        pieces: list[torch.Tensor] = []
        label_pieces: list[torch.Tensor] = []
        for i, emb in enumerate(text_emb):
            pieces.append(emb)
            if labels is not None:
                label_pieces.append(labels[cuts[i] + 1 : cuts[i + 1]])
            if i < len(text_emb) - 1:
                if not feats:
                    raise ConfigError("more image placeholders than images")
                img = feats.pop(0)
                pieces.append(img.to(emb.dtype))
                if labels is not None:
                    label_pieces.append(labels.new_full((img.shape[0],), IGNORE_INDEX))
        row_labels = torch.cat(label_pieces) if labels is not None else None
        return torch.cat(pieces), row_labels

    def prepare_multimodal(
        self,
        input_ids: torch.Tensor,
        image_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> MultimodalBatch:
        """LLaVA's prepare_inputs_labels_for_multimodal (right padding, as LLaVA trains)."""
        mask = (
            attention_mask.bool()
            if attention_mask is not None
            else torch.ones_like(input_ids, dtype=torch.bool)
        )
        feats = list(image_features)
        rows = [
            self._expand_row(
                input_ids[b][mask[b]], labels[b][mask[b]] if labels is not None else None, feats
            )
            for b in range(input_ids.shape[0])
        ]
        if feats:
            raise ConfigError(f"{len(feats)} image(s) left without a placeholder")
        width = max(r[0].shape[0] for r in rows)
        hidden = rows[0][0].shape[1]
        emb = rows[0][0].new_zeros((len(rows), width, hidden))
        new_labels = input_ids.new_full((len(rows), width), IGNORE_INDEX)
        new_mask = torch.zeros((len(rows), width), dtype=torch.bool, device=input_ids.device)
        for b, (row_emb, row_labels) in enumerate(rows):
            n = row_emb.shape[0]
            emb[b, :n] = row_emb
            new_mask[b, :n] = True
            if row_labels is not None:
                new_labels[b, :n] = row_labels
        return MultimodalBatch(
            inputs_embeds=emb,
            labels=new_labels if labels is not None else None,
            attention_mask=new_mask if attention_mask is not None else None,
        )

    def embed(self, input_ids: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        """inputs_embeds for unpadded rows with the same number of placeholders each."""
        counts = (input_ids == IMAGE_TOKEN_INDEX).sum(dim=1)
        if input_ids.shape[0] > 1 and not bool((counts == counts[0]).all()):
            raise ConfigError(f"rows hold different numbers of images: {counts.tolist()}")
        return self.prepare_multimodal(input_ids, image_features).inputs_embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> LlavaOutput:
        """Logits (B, T, vocab) of the expanded sequence; mean next-token loss when labels given."""
        batch = self.prepare_multimodal(
            input_ids, self.encode_images(pixel_values), labels, attention_mask
        )
        out = self.llm(
            inputs_embeds=batch.inputs_embeds,
            attention_mask=batch.attention_mask,
            labels=batch.labels,
            use_cache=False,
        )
        return LlavaOutput(logits=out.logits, loss=out.loss)

    @torch.inference_mode()
    def generate_greedy(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        max_new_tokens: int = 256,
        eos_token_id: int | None = 2,
        margins: list[float] | None = None,
    ) -> list[int]:
        """Greedy decode of one sequence with the KV cache; returns the new token ids.

        `margins`, when given, receives top-1 minus top-2 logit of every step (how near the
        step was to a tie; the parity gate uses it)."""
        if input_ids.shape[0] != 1:
            raise ConfigError(f"generate_greedy decodes one sequence, got {input_ids.shape[0]}")
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        embeds = self.embed(input_ids, self.encode_images(pixel_values))
        out = self.llm(inputs_embeds=embeds, use_cache=True, logits_to_keep=1)
        tokens: list[int] = []
        while True:
            # argmax over (vocab,) of the last position: ties go to the lowest id, as HF.
            nxt = int(out.logits[0, -1].argmax())
            tokens.append(nxt)
            if margins is not None:
                top2 = out.logits[0, -1].float().topk(2).values
                margins.append(float(top2[0] - top2[1]))
            if nxt == eos_token_id or len(tokens) >= max_new_tokens:
                return tokens
            step = torch.tensor([[nxt]], dtype=torch.long, device=input_ids.device)
            out = self.llm(
                input_ids=step, past_key_values=out.past_key_values, use_cache=True,
                logits_to_keep=1,
            )


@dataclass(frozen=True)
class TinyConfig:
    """A small LLaVA for tests and for the sim-trained policy (random init).

    LLM widths stay multiples of 256 so that llama.cpp k-quants apply (FORMATS.md §4).
    """

    vocab_size: int = 1000
    image_size: int = 112
    patch_size: int = 14
    vision_hidden: int = 128
    vision_layers: int = 3
    vision_heads: int = 4
    vision_intermediate: int = 512
    hidden: int = 256
    intermediate: int = 512
    layers: int = 2
    heads: int = 4
    kv_heads: int = 4
    max_positions: int = 2048
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0
    spec: MultimodalSpec = MultimodalSpec()

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ConfigError(f"image_size {self.image_size} not a multiple of {self.patch_size}")
        for name, width, heads in (
            ("vision_hidden", self.vision_hidden, self.vision_heads),
            ("hidden", self.hidden, self.heads),
        ):
            if width % heads:
                raise ConfigError(f"{name} {width} not divisible by {heads} heads")
        if self.heads % self.kv_heads:
            raise ConfigError(f"heads {self.heads} not a multiple of kv_heads {self.kv_heads}")
        if self.vocab_size < 3:
            raise ConfigError(f"vocab_size {self.vocab_size} too small")

    def clip_config(self) -> CLIPVisionConfig:
        return CLIPVisionConfig(
            hidden_size=self.vision_hidden,
            intermediate_size=self.vision_intermediate,
            num_hidden_layers=self.vision_layers,
            num_attention_heads=self.vision_heads,
            image_size=self.image_size,
            patch_size=self.patch_size,
            projection_dim=self.vision_hidden,
            hidden_act="quick_gelu",  # as OpenAI CLIP ViT-L/14
        )

    def llama_config(self) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads,
            max_position_embeddings=self.max_positions,
            rms_norm_eps=1e-5,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            tie_word_embeddings=False,
        )


def build_tiny(config: TinyConfig | None = None, seed: int | None = 0) -> LlavaPolicyModel:
    """Randomly initialised small LlavaPolicyModel (fp32, eval mode); seeded when seed given."""
    cfg = config or TinyConfig()
    if seed is not None:
        torch.manual_seed(seed)
    return LlavaPolicyModel(cfg.clip_config(), cfg.llama_config(), cfg.spec).eval()
