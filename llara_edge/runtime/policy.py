"""Policy: an exported artifact on chosen engines; camera frame + task text -> typed action.

Contract:
    policy = Policy.load(artifact_dir, RuntimeConfig(llm="gguf", vision="onnx",
                                                     variant="q4_k_m", constrained=True))
    step = policy.act(rgb uint8 (H, W, 3), task: str) -> PolicyStep
    step.text, step.action (the format's action type: PickPlaceAction for llara,
    JointStepAction for llarva), step.tokens (answer ids),
    step.timings {"preprocess", "vision", "projector", "prefill", "decode", "parse"} seconds,
    step.forward_passes (LLM passes of the decode loop, the prefill not counted; as
    kernels.constrained_decode counts them), step.n_tokens (answer tokens, forced ones
    included, EOS included when generated), step.ttft_s (act start -> logits of the first
    answer token, i.e. everything up to and including the prefill)
    policy.load_timings {"verify", "engines", "grammar", "prefix", "warmup"} seconds;
    policy.engines {"llm", "vision", "variant", "cache_type_k", "providers", "fallback"}
    policy.close()  /  with Policy.load(...) as policy: ...

Load: the manifest is read, every file the chosen engines use is checked against it (size +
sha256, ArtifactError naming the file), the policy format and conversation template come
from the manifest, the answer grammar is compiled against the artifact's tokenizer (cached,
runtime.grammar_cache) and the system-prompt prefix (prompt ids before the image) is
prefilled once and kept in the backend's KV cache; every act() rolls back to it. A warm-up
vision pass and masked argmax run at load (numba JIT, first-run allocations).
The prompt is LLaRA's (TorchPolicy.prompt: `<image>\\n` put in front of a task without an
image tag). constrained=True: the grammar's forced opening (e.g. " Step 1: Pick up the <p>")
is appended to the prompt's prefill (kernels.constrained_decode.prefill_prefix), then
decode_constrained with jump forward and, with draft_tokens > 0, prompt-lookup speculation
(drafts from the task text, verified in one pass, rolled back where greedy disagrees); the
answer is well-formed by construction. Everything format-specific comes from the policy
format object (formats.base): the artifact's format names the default grammar kind;
the parser, the grammar's options and the step-header rule are those of the format that reads
the grammar in use (config.grammar when given, e.g. "llarva" answers parse as llarva).
Grammars of the format's step kinds (LLaRA's) are compiled once with every step number
1..config.max_steps and both header forms; each act pins the header its task text implies
(decoding.step_header): "Step k: " with k = format.step_number(task) (LLaRA: 1 + the last
step of the prompt's "You have finished: " history) under "numbered", no header under
"unnumbered", the model's choice of the two under "either". `policy.numbering` is
config.numbering, or by default what the checkpoint writes: the answer forms its manifest
records (decoding.step_header.numbering_for: one form -> that form; both or none recorded ->
"either"). Object names (grammar kinds that write them, generic names) are bounded per act at
the longest VIMA name or the longest name the task text mentions, if longer
(decoding.object_names; the grammar is compiled with config.name_max_bytes), and with
config.names_from_prompt restricted to the names it mentions. `policy.views`
(decoding.answer_views) builds both views and the forced opening per (step number, name
rule). `policy.format` is that format object; `policy.prompt_variant` is
config.prompt_variant or the manifest's (None: the format's default), for the prompter.
constrained=False: free greedy (decode_greedy) to EOS and the strict parser, whose
ParseError propagates unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llara_edge.actions import Action
from llara_edge.backends.base import make_backend, make_vision
from llara_edge.decoding.answer_grammars import NAMED_KINDS
from llara_edge.decoding.answer_views import AnswerViews
from llara_edge.decoding.constrained_decode import Lookahead, decode_constrained, decode_greedy
from llara_edge.decoding.grammar_cache import grammar_for
from llara_edge.decoding.prompt_lookup import PromptLookup, PromptLookupConfig, whitespace_aliases
from llara_edge.decoding.step_header import numbering_for
from llara_edge.errors import ConfigError
from llara_edge.formats import (
    IMAGE_TOKEN_INDEX,
    PolicyFormat,
    format_for_grammar,
    one_image_prompt,
    policy_format,
)
from llara_edge.runtime.artifact import Artifact
from llara_edge.runtime.config import RuntimeConfig
from llara_kernels.masked_argmax import masked_argmax

STAGES = ("preprocess", "vision", "projector", "prefill", "decode", "parse")


def answer_format(artifact: Artifact, config: RuntimeConfig) -> tuple[PolicyFormat, str]:
    """(the format that reads the answers, the grammar kind) for `artifact` under `config`:
    the kind is config.grammar or the artifact's format's default; ConfigError when the
    artifact's format is unknown here or no format reads that kind."""
    try:
        kind = config.grammar or policy_format(artifact.policy_format).grammar_kind
        return format_for_grammar(kind, artifact.policy_format, config.n_joints), kind
    except ConfigError as err:
        raise ConfigError(f"{err} (artifact {artifact.root})") from err


def grammar_options(fmt: PolicyFormat, kind: str, config: RuntimeConfig) -> dict:
    """The GrammarSpec keyword arguments `kind` is compiled with under `config` (Policy.load;
    the pass-count benchmarks compile the same grammar through this)."""
    options = fmt.grammar_options(kind, config.object_names, config.max_steps)
    if kind in NAMED_KINDS:
        options["name_max_bytes"] = config.name_max_bytes
    return options


def recorded_variant(artifact: Artifact, config: RuntimeConfig) -> str | None:
    """config.prompt_variant or the manifest's, checked against the artifact's format's
    prompt variants (None: the format's default)."""
    variant = config.prompt_variant or artifact.prompt_variant
    known = policy_format(artifact.policy_format).prompt_variants
    if variant is not None and variant not in known:
        raise ConfigError(f"prompt variant {variant!r} is not one of policy format "
                          f"{artifact.policy_format!r}'s: {list(known)} (artifact "
                          f"{artifact.root})")
    return variant


@dataclass(frozen=True)
class PolicyStep:
    text: str
    action: Action
    timings: dict[str, float]
    forward_passes: int
    n_tokens: int
    ttft_s: float
    tokens: tuple[int, ...] = field(default=())


class Policy:
    """One artifact, one LLM backend, one vision engine, one KV-cache prefix."""

    def __init__(self, artifact: Artifact, config: RuntimeConfig, backend, vision, tokenizer,
                 grammar, load_timings: dict[str, float] | None = None):
        self.format: PolicyFormat = answer_format(artifact, config)[0]
        self.artifact, self.config, self.backend, self.vision = artifact, config, backend, vision
        self.tokenizer, self.grammar = tokenizer, grammar
        self.template = artifact.template
        self.numbering = config.numbering or numbering_for(artifact.answer_forms)
        self.prompt_variant = recorded_variant(artifact, config)
        self.views = AnswerViews(grammar, self.format, self.numbering, config.names_from_prompt)
        self._aliases = whitespace_aliases(grammar.vocab.token_bytes)  # "▁▁" drafts as "▁"
        self._prefix_ids = self._split(self.prompt_ids(""))[0]
        t0 = time.perf_counter()
        backend.set_prefix([self._prefix_ids])
        t1 = time.perf_counter()
        self._warm_up(artifact.preprocess.image_size)
        self.load_timings = {**(load_timings or {}), "prefix": t1 - t0,
                             "warmup": time.perf_counter() - t1}
        self.engines = {"llm": backend.name, "vision": vision.name,
                        "variant": config.variant if backend.name == "gguf" else None,
                        "cache_type_k": config.cache_type_k if backend.name == "gguf" else None,
                        "providers": getattr(backend, "providers", None),
                        "fallback": getattr(backend, "fallback", None)}

    def _warm_up(self, size: int) -> None:
        """One vision pass and one masked argmax, so JIT compilation (numba kernels) and
        first-run allocations happen at load, not in the first control step."""
        self.vision.encode(np.full((size, size, 3), 128, np.uint8), dict.fromkeys(STAGES, 0.0))
        grammar, _, state = self.views.opening("")
        masked_argmax(np.zeros(self.backend.n_vocab, np.float32), grammar.mask(state))

    @classmethod
    def load(cls, artifact_dir: str | Path, config: RuntimeConfig | None = None) -> Policy:
        config = config or RuntimeConfig()
        t0 = time.perf_counter()
        artifact = Artifact.open(artifact_dir)
        tokenizer = artifact.tokenizer(config.variant)
        t1 = time.perf_counter()
        backend = make_backend(config.llm, artifact, config)
        try:
            vision = make_vision(config.vision, artifact, config, backend)
            t2 = time.perf_counter()
            fmt, kind = answer_format(artifact, config)
            grammar = grammar_for(kind, tokenizer, backend.n_vocab, config.grammar_cache_dir,
                                  **grammar_options(fmt, kind, config))
            t3 = time.perf_counter()
            timings = {"verify": t1 - t0, "engines": t2 - t1, "grammar": t3 - t2}
            return cls(artifact, config, backend, vision, tokenizer, grammar, timings)
        except BaseException:
            backend.close()
            raise

    # --- prompts -----------------------------------------------------------------------
    def prompt(self, task: str) -> str:
        """The conversation prompt with exactly one image tag (put in front when absent)."""
        return one_image_prompt(self.template, task)

    def prompt_ids(self, task: str) -> list[int]:
        return self.tokenizer.tokenizer_image_token(self.prompt(task))

    @staticmethod
    def _split(ids: list[int]) -> tuple[list[int], list[int]]:
        cut = ids.index(IMAGE_TOKEN_INDEX)
        return ids[:cut], ids[cut + 1 :]

    # --- one control step --------------------------------------------------------------
    def _prefill(self, embeds: np.ndarray, prefix: list[int], tail: list[int],
                 opening: list[int]) -> np.ndarray:
        if prefix != self._prefix_ids or self.backend.n_prefix != len(prefix):
            self.backend.set_prefix([prefix])  # another template: a new prefix
            self._prefix_ids = prefix
        else:
            self.backend.reset_to_prefix()
        opening = opening if self.config.constrained else []
        return self.backend.prefill([embeds, tail + opening])

    def _lookahead(self, tail: list[int], opening: list[int]) -> Lookahead | None:
        """Prompt-lookup drafts over the task text (None when draft_tokens is 0)."""
        if not self.config.draft_tokens:
            return None
        look = PromptLookup(tail, PromptLookupConfig(max_draft=self.config.draft_tokens),
                            self._aliases)
        # the answer's n-grams start inside the prefilled opening
        return Lookahead(lambda answer: look([*opening, *answer]), self.backend.rollback,
                         look.feedback)

    def _decode(self, logits: np.ndarray, tail: list[int], opened: tuple):
        budget = self.config.max_new_tokens
        if not self.config.constrained:
            return [], decode_greedy(self.backend.extend, logits, self.tokenizer.eos_id, budget)
        grammar, opening, state = opened
        if len(opening) >= budget:
            raise ConfigError(f"max_new_tokens {budget} leaves no room after the forced "
                              f"opening of {len(opening)} tokens")
        result = decode_constrained(self.backend.extend, grammar, logits,
                                    budget - len(opening), state,
                                    self._lookahead(tail, opening))
        return opening, result

    def act(self, rgb: np.ndarray, task: str) -> PolicyStep:
        """Frame + task -> answer and typed action (ParseError only when unconstrained)."""
        timings = dict.fromkeys(STAGES, 0.0)
        start = time.perf_counter()
        embeds = self.vision.encode(rgb, timings)
        t0 = time.perf_counter()
        prefix, tail = self._split(self.prompt_ids(task))
        opened = self.views.opening(task)  # (view, forced opening, state)
        t1 = time.perf_counter()
        logits = self._prefill(embeds, prefix, tail, opened[1])
        t2 = time.perf_counter()
        opening, result = self._decode(logits, tail, opened)
        t3 = time.perf_counter()
        tokens = [*opening, *result.tokens]
        text = self.tokenizer.decode(tokens).strip()
        action = self.format.parse(text)
        t4 = time.perf_counter()
        timings["preprocess"] += t1 - t0  # tokenisation of the prompt
        timings.update(prefill=t2 - t1, decode=t3 - t2, parse=t4 - t3)
        return PolicyStep(text=text, action=action, timings=timings,
                          forward_passes=result.n_forward_passes, n_tokens=len(tokens),
                          ttft_s=t2 - start, tokens=tuple(tokens))

    def close(self) -> None:
        self.vision.close()
        self.backend.close()

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
