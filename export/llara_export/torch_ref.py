"""The torch reference backend: HF/LLaVA semantics, ground truth for parity (fp32 on CPU).

Contract:
    backend = TorchReferenceBackend.load(checkpoint_dir, clip_dir=None, dtype=torch.float32)
    backend.encode_image(image) -> torch.Tensor (N, hidden)     # preprocess + CLIP + projector
    backend.prefill(segments) -> torch.Tensor (vocab,)          # token-id lists and (N, hidden)
                                                                # embeddings, appended to the cache
    backend.extend(token_ids) -> torch.Tensor (k, vocab)        # logits after each new token
    backend.rollback(n)                                         # forget the last n positions
    backend.reset(); backend.n_past                             # positions in the KV cache

    policy = TorchPolicy.load(checkpoint_dir, PolicyConfig(policy_format="llara"))
    policy.act(image, user_text) -> PolicyResult(text, action, token_ids, prompt_ids)

TorchPolicy follows LLaRA's evaluation: prompt = build_prompt(template, user_text) (an
`<image>` line is put in front when user_text has no image tag, as LLaVA's run_llava),
ids = tokenizer_image_token(prompt), pixel values from llara_edge.models.preprocess, greedy
decoding with model.generate_greedy (token-identical to HF generate, max_new_tokens 256 by
default, stops at </s>), text = decode(new ids, skip special).strip(), then the parser of
the policy format object (llara_edge.formats.policy_format(config.policy_format,
config.n_joints)); ParseError from the parser propagates unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import DynamicCache

from llara_edge.actions import Action
from llara_edge.errors import ConfigError
from llara_edge.formats import PolicyFormat, get_template, one_image_prompt, policy_format
from llara_edge.models.preprocess import PreprocessConfig, preprocess_image
from llara_edge.robot.policy_io import PolicyOutput
from llara_export.models.checkpoint import load_checkpoint
from llara_export.models.llava import LlavaPolicyModel
from llara_export.models.tokenizer import SpmTokenizer

_TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])

@dataclass(frozen=True)
class PolicyConfig:
    """How a policy is prompted and decoded (defaults: LLaRA's evaluation)."""

    policy_format: str = "llara"
    template: str = "vicuna_v1"
    max_new_tokens: int = 256
    n_joints: int = 7  # LLARVA only

    def __post_init__(self) -> None:
        get_template(self.template)
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive int, got {self.max_new_tokens!r}")
        if not isinstance(self.n_joints, int) or self.n_joints < 1:
            raise ConfigError(f"n_joints must be a positive int, got {self.n_joints!r}")
        self.format()  # ConfigError naming the known formats

    def format(self) -> PolicyFormat:
        """The policy format object: prompt rules, parser, action type."""
        return policy_format(self.policy_format, self.n_joints)


@dataclass(frozen=True)
class PolicyResult:
    text: str  # decoded answer, stripped
    action: Action  # the policy format's action type
    token_ids: tuple[int, ...]  # new tokens, </s> included when produced
    prompt_ids: tuple[int, ...]  # with IMAGE_TOKEN_INDEX placeholders


class TorchReferenceBackend:
    """One LLaVA model with a KV cache for a single sequence."""

    def __init__(
        self, model: LlavaPolicyModel, tokenizer: SpmTokenizer, preprocess: PreprocessConfig
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self._cache: DynamicCache | None = None

    @classmethod
    def load(
        cls,
        path: str | Path,
        clip_dir: str | Path | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> TorchReferenceBackend:
        model, tokenizer, info = load_checkpoint(path, clip_dir=clip_dir, dtype=dtype)
        return cls(model, tokenizer, info.preprocess)

    @property
    def device(self) -> torch.device:
        return self.model.llm.device

    @property
    def n_past(self) -> int:
        return 0 if self._cache is None else self._cache.get_seq_length()

    def pixel_values(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        """(1, 3, S, S) tensor in the model's dtype."""
        px = torch.from_numpy(preprocess_image(image, self.preprocess))[None]
        return px.to(device=self.device, dtype=self.model.vision_tower.dtype)

    @torch.inference_mode()
    def encode_image(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        return self.model.encode_images(self.pixel_values(image))[0]

    def reset(self) -> None:
        self._cache = None

    @torch.inference_mode()
    def _run(self, embeds: torch.Tensor) -> torch.Tensor:
        """Append (1, T, hidden) embeddings to the cache; logits (T, vocab)."""
        if self._cache is None:
            self._cache = DynamicCache()
        out = self.model.llm(inputs_embeds=embeds, past_key_values=self._cache, use_cache=True)
        self._cache = out.past_key_values
        return out.logits[0]

    @torch.inference_mode()
    def prefill(self, segments: Sequence[Sequence[int] | torch.Tensor]) -> torch.Tensor:
        """Append id lists (no placeholders) and (N, hidden) embeddings; last logits (vocab,)."""
        table = self.model.llm.get_input_embeddings()
        pieces = [
            seg.to(device=self.device, dtype=table.weight.dtype) if isinstance(seg, torch.Tensor)
            else table(torch.tensor(list(seg), dtype=torch.long, device=self.device))
            for seg in segments
        ]
        if not pieces or sum(p.shape[0] for p in pieces) == 0:
            raise ConfigError("prefill needs at least one position")
        return self._run(torch.cat(pieces)[None])[-1]

    @torch.inference_mode()
    def extend(self, token_ids: Sequence[int]) -> torch.Tensor:
        """Feed k tokens; logits (k, vocab), row i predicting the token after token_ids[i]."""
        if not token_ids:
            raise ConfigError("extend needs at least one token")
        ids = torch.tensor([list(token_ids)], dtype=torch.long, device=self.device)
        return self._run(self.model.llm.get_input_embeddings()(ids))

    def rollback(self, n: int) -> None:
        """Forget the last n cached positions."""
        if not 0 <= n <= self.n_past:
            raise ConfigError(f"cannot roll back {n} of {self.n_past} positions")
        if n and self._cache is not None:
            # transformers >= 5 crops by a negative count, 4.x by the length to keep.
            self._cache.crop(-n if _TRANSFORMERS_MAJOR >= 5 else self.n_past - n)


class TorchPolicy:
    """Camera frame + task text -> answer text and typed action, with the reference model."""

    def __init__(self, backend: TorchReferenceBackend, config: PolicyConfig | None = None):
        self.backend = backend
        self.config = config or PolicyConfig()

    @classmethod
    def load(
        cls, path: str | Path, config: PolicyConfig | None = None,
        clip_dir: str | Path | None = None, dtype: torch.dtype = torch.float32,
    ) -> TorchPolicy:
        return cls(TorchReferenceBackend.load(path, clip_dir, dtype), config)

    def prompt(self, user_text: str) -> str:
        """The full conversation prompt; exactly one image tag (added in front when absent)."""
        return one_image_prompt(self.config.template, user_text)

    def prompt_ids(self, user_text: str) -> list[int]:
        return self.backend.tokenizer.tokenizer_image_token(self.prompt(user_text))

    def generate(
        self, image: Image.Image | np.ndarray, user_text: str,
        margins: list[float] | None = None,
    ) -> tuple[str, list[int], list[int]]:
        """Greedy answer: (text, new token ids, prompt ids); `margins` as generate_greedy's."""
        ids = self.prompt_ids(user_text)
        tokens = self.backend.model.generate_greedy(
            torch.tensor([ids], dtype=torch.long, device=self.backend.device),
            self.backend.pixel_values(image),
            max_new_tokens=self.config.max_new_tokens,
            eos_token_id=self.backend.tokenizer.eos_id,
            margins=margins,
        )
        return self.backend.tokenizer.decode(tokens).strip(), tokens, ids

    def act(self, image: Image.Image | np.ndarray, user_text: str) -> PolicyResult:
        """Answer and parse; llara_edge.errors.ParseError when the text is not an action."""
        text, tokens, ids = self.generate(image, user_text)
        action = self.config.format().parse(text)
        return PolicyResult(
            text=text, action=action, token_ids=tuple(tokens), prompt_ids=tuple(ids)
        )


# ----------------------------------------------------------------------------- text policy
class TorchTextPolicy:
    """The torch reference (`TorchPolicy`) as a TextPolicy: same prompt, greedy decoding."""

    name = "torch-reference"

    def __init__(self, policy):
        self.policy = policy

    def act(self, rgb: np.ndarray, user_text: str) -> PolicyOutput:
        p = self.policy
        t0 = time.perf_counter()
        ids = p.prompt_ids(user_text)
        pixels = p.backend.pixel_values(rgb)
        t1 = time.perf_counter()
        tokens = p.backend.model.generate_greedy(
            torch.tensor([ids], dtype=torch.long, device=p.backend.device), pixels,
            max_new_tokens=p.config.max_new_tokens, eos_token_id=p.backend.tokenizer.eos_id)
        t2 = time.perf_counter()
        text = p.backend.tokenizer.decode(tokens).strip()
        return PolicyOutput(text, {"preprocess": t1 - t0, "generate": t2 - t1},
                            {"n_tokens": len(tokens)})


def load_text_policy(checkpoint: Path, max_new_tokens: int) -> TorchTextPolicy:
    """`llara-edge run --policy torch-reference --checkpoint DIR` (entry point
    `llara_edge.policies`): the reference as the control loop's TextPolicy."""
    return TorchTextPolicy(TorchPolicy.load(checkpoint,
                                            PolicyConfig(max_new_tokens=max_new_tokens)))
