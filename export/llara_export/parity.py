"""Parity gate: every exported variant against the torch reference on simulator frames.

Contract:
    refs = reference_outputs(policy, cases)                   # torch, once per export
    result = measure(name, Engines(vision, backend), refs, cases, policy)   # one VariantResult
    logits, tokens = greedy_answer(backend, prompt_ids, embeds, max_new, eos_id)
    thresholds = load_thresholds(path=None)                   # parity_thresholds.json
    failures = gate(result, thresholds)                       # list of "metric value vs bound"
    format_table(results) -> str

Metrics of a variant (None where the variant does not produce that quantity):
- min_cosine: smallest per-token cosine between the variant's image embeddings and the
  reference's (N, hidden) embeddings over all frames;
- max_logit_diff: max |logits - reference| after the full multimodal prompt;
- answer_agreement: fraction of frames whose greedy answer ids equal the reference's;
  the gate also counts a frame whose answer parts from the reference's at a reference
  near-tie: top-1 minus top-2 logit there <= 2 x the variant's max_logit_diff bound (both
  logits may move by the bound, so either token is within the variant's tolerance; random-
  weight models have such ties everywhere). `tie_margins` holds the reference margin at
  the first differing token of each frame that differs (inf where the reference has none);
- max_action_px: largest pick/place error in pixels of the frame over frames whose
  reference answer parses, with the parser of the reference's policy format
  (llara_edge.formats.base), as a pick-and-place action (inf when the variant's
  answer does not parse).
A row measures the runtime's own engines (the classes Policy uses, llara_edge.backends): a
VisionEngine (its embeddings give min_cosine) and/or an LLM Backend (logits, answers). An LLM
row without a vision engine is fed the reference image embeddings, so it measures the LLM
alone. `greedy_answer` feeds a prompt as Policy.act does (the ids before the image as the
backend's prefix, then the image embeddings and the rest of the prompt in one prefill, so the
KV cache is used with P > 0) and decodes with the runtime's decode_greedy over the backend's
extend (ties -> lowest id, as torch).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.backends.base import Backend, VisionEngine
from llara_edge.cases import ParityCase
from llara_edge.decoding.constrained_decode import decode_greedy
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats import IMAGE_TOKEN_INDEX, PolicyFormat, policy_format
from llara_edge.runtime.policy import STAGES

THRESHOLDS_FILE = Path(__file__).with_name("parity_thresholds.json")
METRICS = ("min_cosine", "max_logit_diff", "min_answer_agreement", "max_action_px")


@dataclass(frozen=True)
class Engines:
    """The runtime engines one parity row measures (either may be None, not both)."""

    vision: VisionEngine | None = None  # frame -> (N, hidden) embeddings
    backend: Backend | None = None  # the LLM; fed `vision`'s embeddings, else the reference's


@dataclass
class RefOutput:
    prompt_ids: list[int]  # with IMAGE_TOKEN_INDEX placeholders
    embeds: np.ndarray  # (N, hidden) float32
    logits: np.ndarray  # (vocab,) after the prompt
    tokens: list[int]  # greedy answer ids
    text: str
    margins: list[float] = field(default_factory=list)  # top-1 - top-2 logit per answer token


@dataclass
class VariantResult:
    name: str
    min_cosine: float | None = None
    max_logit_diff: float | None = None
    answer_agreement: float | None = None
    max_action_px: float | None = None
    tie_margins: list[float] = field(default_factory=list)
    answers: int = 0  # frames whose answers were compared
    failures: list[str] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def reference_outputs(policy, cases: list[ParityCase]) -> list[RefOutput]:
    """Torch reference on each case (TorchPolicy: prompt, embeddings, logits, greedy)."""
    import torch

    backend, out = policy.backend, []
    for case in cases:
        margins: list[float] = []
        text, tokens, ids = policy.generate(case.rgb, case.user_text, margins=margins)
        embeds = backend.encode_image(case.rgb)
        with torch.inference_mode():
            inputs = backend.model.embed(torch.tensor([ids]), embeds[None])
            logits = backend.model.llm(inputs_embeds=inputs, logits_to_keep=1).logits[0, -1]
        out.append(RefOutput(list(ids), embeds.float().numpy(), logits.float().numpy(),
                             list(tokens), text, margins))
    return out


def token_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine of two (N, D) arrays; ConfigError when the shapes differ."""
    if a.shape != b.shape:
        raise ConfigError(f"embedding shapes differ: {a.shape} vs {b.shape}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return (a64 * b64).sum(axis=1) / np.maximum(norms, 1e-30)


def action_error_px(ref_text: str, text: str, width: int, height: int,
                    fmt: PolicyFormat | None = None) -> float | None:
    """Largest pick/place distance in pixels; None when the reference does not parse (with
    `fmt`'s parser, default llara) or is no pick-and-place action."""
    fmt = fmt or policy_format("llara")
    try:
        ref = fmt.parse(ref_text)
    except ParseError:
        return None
    if not isinstance(ref, PickPlaceAction):
        return None
    try:
        act = fmt.parse(text)
    except ParseError:
        return math.inf
    scale = np.array([width, height], dtype=np.float64)
    return float(max(np.linalg.norm((np.array(p) - np.array(q)) * scale)
                     for p, q in ((ref.pick, act.pick), (ref.place, act.place))))


def _divergence_margin(tokens: list[int], ref: RefOutput) -> float:
    """The reference's top-1 - top-2 margin at the first token where `tokens` differ."""
    pairs = zip(tokens, ref.tokens, strict=False)  # a shorter answer parts where it ends
    k = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(tokens), len(ref.tokens)))
    return ref.margins[k] if k < len(ref.margins) else math.inf


def greedy_answer(backend: Backend, prompt_ids: list[int], embeds: np.ndarray,
                  max_new: int, eos_id: int) -> tuple[np.ndarray, list[int]]:
    """(logits after the prompt (vocab,), greedy answer ids) of `backend` on LLaVA prompt ids
    whose IMAGE_TOKEN_INDEX placeholders stand for `embeds` (N, hidden) (module docstring)."""
    segments: list = [[]]
    for tok in prompt_ids:
        if tok == IMAGE_TOKEN_INDEX:
            segments += [np.asarray(embeds, dtype=np.float32), []]
        else:
            segments[-1].append(int(tok))
    prefix, rest = segments[0], [s for s in segments[1:] if len(s)]
    if prefix and rest:
        backend.set_prefix([prefix])
        logits = backend.prefill(rest)
    else:
        backend.reset()
        logits = backend.prefill(segments)
    return logits, decode_greedy(backend.extend, logits, eos_id, max_new).tokens


def measure(name: str, engines: Engines, refs: list[RefOutput], cases: list[ParityCase], policy,
            max_new_tokens: int | None = None) -> VariantResult:
    """All metrics the engines produce, over the parity cases."""
    if engines.vision is None and engines.backend is None:
        raise ConfigError(f"parity row {name!r} has no engine to measure")
    result = VariantResult(name)
    tok = policy.backend.tokenizer
    max_new = max_new_tokens or policy.config.max_new_tokens
    fmt = policy_format(policy.config.policy_format)  # the reference's answers' parser
    cosines, diffs, agree, px = [], [], [], []
    for ref, case in zip(refs, cases, strict=True):
        embeds = ref.embeds
        if engines.vision is not None:
            timings = dict.fromkeys(STAGES, 0.0)
            embeds = engines.vision.encode(case.rgb, timings)
            cosines.append(float(token_cosines(embeds, ref.embeds).min()))
        if engines.backend is None:
            continue
        logits, tokens = greedy_answer(engines.backend, ref.prompt_ids, embeds, max_new,
                                       tok.eos_id)
        diffs.append(float(np.abs(logits - ref.logits).max()))
        agree.append(tokens == ref.tokens)
        if not agree[-1]:
            result.tie_margins.append(_divergence_margin(tokens, ref))
        err = action_error_px(ref.text, tok.decode(tokens).strip(), case.rgb.shape[1],
                              case.rgb.shape[0], fmt)
        if err is not None:
            px.append(err)
    result.min_cosine = min(cosines) if cosines else None
    result.max_logit_diff = max(diffs) if diffs else None
    result.answer_agreement = float(np.mean(agree)) if agree else None
    result.answers = len(agree)
    result.max_action_px = max(px) if px else None
    return result


def load_thresholds(path: str | Path | None = None) -> dict[str, dict]:
    """Variant -> metric bounds (see parity_thresholds.json); ConfigError when unreadable."""
    path = Path(path) if path else THRESHOLDS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"unreadable parity thresholds {path}: {err}") from err
    table = {k: v for k, v in data.items() if not k.startswith("_")}
    for variant, bounds in table.items():
        unknown = set(bounds) - set(METRICS)
        if unknown:
            raise ConfigError(f"unknown metric(s) {sorted(unknown)} for {variant!r} in {path}")
    return table


# metric -> (value attribute, True when the bound is a minimum)
_BOUNDS = {
    "min_cosine": ("min_cosine", True),
    "max_logit_diff": ("max_logit_diff", False),
    "min_answer_agreement": ("answer_agreement", True),
    "max_action_px": ("max_action_px", False),
}


def gate(result: VariantResult, thresholds: dict[str, dict]) -> list[str]:
    """Failed bounds of one variant as readable strings (also stored in result.failures)."""
    kind = result.name.split("-")[0] if result.name not in thresholds else result.name
    bounds = thresholds.get(kind)
    if bounds is None:
        raise ConfigError(f"no parity thresholds for variant {result.name!r}")
    failures = []
    for metric, bound in bounds.items():
        attr, is_min = _BOUNDS[metric]
        value = getattr(result, attr)
        if bound is None or value is None:
            continue
        if metric == "min_answer_agreement":
            value = _agreement_with_ties(result, bounds.get("max_logit_diff"))
        if (value < bound) if is_min else (value > bound):
            failures.append(f"{attr} {value:.4g} {'<' if is_min else '>'} {bound}")
    result.failures = failures
    return failures


def _agreement_with_ties(result: VariantResult, logit_bound: float | None) -> float:
    """answer_agreement plus the frames that part from the reference at a near-tie."""
    if logit_bound is None or not result.tie_margins:
        return result.answer_agreement
    ties = sum(m <= 2.0 * logit_bound for m in result.tie_margins)
    said = f"{ties} answer(s) parted at a reference near-tie <= {2 * logit_bound:g}"
    if ties and said not in result.note:
        result.note = ", ".join(filter(None, [result.note, said]))
    return result.answer_agreement + ties / result.answers


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def format_table(results: list[VariantResult]) -> str:
    """Plain-text parity table, one row per variant, failures spelled out."""
    w = max([10, *(len(r.name) for r in results)])
    head = f"{'variant':<{w}} {'cos_min':>9} {'logit_diff':>10} {'agree':>6} {'act_px':>7}  status"
    rows = [head, "-" * len(head)]
    for r in results:
        status = "FAIL: " + "; ".join(r.failures) if r.failures else "ok"
        if r.note:
            status += f" ({r.note})"
        rows.append(f"{r.name:<{w}} {_fmt(r.min_cosine):>9} {_fmt(r.max_logit_diff):>10} "
                    f"{_fmt(r.answer_agreement):>6} {_fmt(r.max_action_px):>7}  {status}")
    return "\n".join(rows)
