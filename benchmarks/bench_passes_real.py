"""LLM passes per LLaRA action on the REAL LLaMA-2 vocabulary: the runtime's constrained
decoder (forced runs + prompt-lookup drafts) vs free greedy, on whole prompts.

    python -m llara_edge.benchmarks.bench_passes_real [--vocab GGUF] [--episodes 60]

Episodes are VIMA-style D-inBC prompts (LlaraPrompt with every object's box, the families
and history lengths 0..4 of tests/test_formats_prompt.py's kind) and the answer LLaRA's data
gives them: "Step k+1: Pick up the <p>dragged</p> at <b>(its box centre)</b>, rotate
<r>[r]</r> degrees, and drop it at <b>(the base object's centre, or a free point)</b>.",
first point with 1 or 2 spaces as released checkpoints write it. The model is a teacher
that ranks the answer's own llama.cpp tokens first (and anything after a wrong draft token
is wrong too, so rejected drafts cost what they cost a real model: their pass and a
rollback). The decoder is exactly the runtime's (runtime.policy): the generic-name LLaRA
grammar with step numbers 1..32 and its step-header view, the forced opening in the prefill
(not counted, as in the runtime), prompt-lookup drafts over the prompt's tokens after the
image. Free greedy is one pass per answer token (the last one's pass gives EOS).
Rows: answers with points at the box centres / off them (SPREADS), each without drafts,
with the runtime's drafts (PromptLookupConfig defaults) but no whitespace aliases (the
runtime before "▁▁" was looked up as "▁"), and as the runtime drafts now; the ratio is
passes / free.
Prints a table, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.benchmarks.bench_grammar_vocab import default_vocab
from llara_edge.formats import (
    LlaraPrompt,
    ObjectRef,
    build_prompt,
    format_answer,
    next_step_number,
)
from llara_edge.formats.templates import IMAGE_TOKEN_INDEX
from llara_edge.kernels.constrained_decode import Lookahead, decode_constrained, prefill_prefix
from llara_edge.kernels.prompt_lookup import PromptLookup, PromptLookupConfig, whitespace_aliases
from llara_edge.kernels.step_header import StepHeader
from llara_edge.kernels.token_grammar import compile_grammar

COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "red and purple stripe",
          "green paisley", "granite", "dark blue")
SHAPES = ("block", "bowl", "pan", "heart", "cross", "ring", "L-shaped block", "pentagon",
          "letter R", "triangle")
TEMPLATES = ("Put the {dragged} into the {base}.",
             "Put the {dragged} into the {base}. Then put the {other} into the {base}.",
             "This is a dax {dragged}. This is a blicket {base}. Put a dax into a blicket.",
             "Rotate the {dragged} {angle} degrees.")


# answers' points: at the box centres (all digits in the prompt) / off them by up to 0.02
# (pick) and 0.06 (place) per axis
SPREADS = {"at centres": 0.0, "off centres": 0.02}


class DraftTeacher:
    """extend/rollback of a model whose argmax is `target`'s next token wherever what was
    fed so far is target's prefix (EOS after it); elsewhere its rows are EOS."""

    def __init__(self, target: list[int], n_vocab: int, eos_id: int, fed: list[int]):
        self.target, self.n, self.eos, self.fed = target, n_vocab, eos_id, list(fed)

    def _row(self, upto: int) -> np.ndarray:
        x = np.zeros(self.n, np.float32)
        ok = self.fed[:upto] == self.target[:upto]
        x[self.target[upto] if ok and upto < len(self.target) else self.eos] = 1.0
        return x

    def first(self) -> np.ndarray:
        return self._row(len(self.fed))

    def extend(self, ids) -> np.ndarray:
        start = len(self.fed)
        self.fed += [int(t) for t in ids]
        return np.stack([self._row(start + i + 1) for i in range(len(ids))])

    def rollback(self, n: int) -> None:
        del self.fed[len(self.fed) - n:]


def _box(rng, w=(0.04, 0.12)) -> tuple[float, float, float, float]:
    cx, cy = (round(float(v), 3) for v in rng.uniform(0.1, 0.9, 2))
    bw, bh = (round(float(v), 3) for v in rng.uniform(*w, 2))
    return cx, cy, bw, bh


def _near(rng, point, spread: float) -> tuple[float, float]:
    """`point` moved by up to `spread` per axis (a pick or place off the box centre)."""
    return tuple(round(float(np.clip(v + rng.uniform(-spread, spread), 0, 1)), 3)
                 for v in point)


def episode(rng: np.random.Generator, spread: float = 0.0) -> tuple[str, str]:
    """(user text, answer) of one random D-inBC step; `spread` > 0 moves the pick and place
    points off the box centres (as demonstrations do), so their digits are not all copied."""
    names = [f"{c} {s}" for c, s in zip(rng.choice(COLORS, 3, replace=False),
                                        rng.choice(SHAPES, 3, replace=False), strict=True)]
    template = str(rng.choice(TEMPLATES))
    boxes = {"dragged": _box(rng), "base": _box(rng, (0.12, 0.25)), "other": _box(rng)}
    assets = {k: ObjectRef(n, boxes[k]) for k, n in zip(("dragged", "base", "other"), names,
                                                        strict=True)
              if "{" + k + "}" in template}
    angle = int(rng.choice([30, 45, 60, 90, 120, 150, 180]))
    prompt = LlaraPrompt(template.replace("{angle}", str(angle)), assets=assets,
                         paraphrase=int(rng.integers(0, 15)) if rng.random() < 0.5 else None)
    k = int(rng.integers(0, 5))
    hist = [PickPlaceAction(_box(rng)[:2], _box(rng)[:2], 0) for _ in range(k)]
    pick = _near(rng, boxes["dragged"][:2], spread) if spread else boxes["dragged"][:2]
    rotate = template.startswith("Rotate")
    place = pick if rotate else boxes["base"][:2]
    place = _near(rng, place, 3 * spread) if spread else place
    action = PickPlaceAction(pick, place, angle if rotate else 0, object_name=names[0])
    answer = format_answer([action], first_step=k + 1, first_point_spaces=1 + int(rng.random()
                                                                                   < 0.5))
    return prompt.render(hist), answer


def run(tok, base, n: int, draft: PromptLookupConfig | None, spread: float,
        aliases: bool = True, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    passes = tokens = 0
    for _ in range(n):
        user, answer = episode(rng, spread)
        ids = tok.tokenizer_image_token(build_prompt("vicuna_v1", user))
        tail = ids[ids.index(IMAGE_TOKEN_INDEX) + 1:]
        target = tok.encode(answer)
        view = StepHeader(base, next_step_number(user), "numbered")
        opening, state = prefill_prefix(view)
        model = DraftTeacher(target, base.n_vocab, tok.eos_id, opening)
        look = None
        if draft is not None:
            lookup = PromptLookup(tail, draft, whitespace_aliases(base.vocab.token_bytes)
                                  if aliases else None)
            look = Lookahead(lambda a, lk=lookup, op=opening: lk([*op, *a]), model.rollback,
                             lookup.feedback)
        result = decode_constrained(model.extend, view, model.first(), 256, state, look)
        if opening + result.tokens != target or not result.complete:
            raise RuntimeError(f"decoding lost the answer {answer!r}")
        passes += result.n_forward_passes
        tokens += len(target)
    return {"passes": passes / n, "free": tokens / n, "ratio": passes / tokens}


def main(argv: list[str] | None = None) -> int:
    from llara_edge.models.gguf_tokenizer import GgufTokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=Path)
    ap.add_argument("--episodes", type=int, default=60)
    args = ap.parse_args(argv)
    path = args.vocab or default_vocab()
    if not path.is_file():
        print(f"no vocabulary at {path}: run tests/test_gguf_tokenizer.py once", file=sys.stderr)
        return 2
    tok = GgufTokenizer(path)
    base = compile_grammar("llara", tok, n_vocab=tok.vocab_size, first_step=1, last_step=32,
                           numbered=None)
    configs = {"no drafts": (None, False), "drafts, no aliases": (PromptLookupConfig(), False),
               "drafts": (PromptLookupConfig(), True)}
    res = {f"{answers}/{label}": run(tok, base, args.episodes, cfg, spread, aliases)
           for answers, spread in SPREADS.items()
           for label, (cfg, aliases) in configs.items()}
    print(f"passes per LLaRA action, real vocabulary (V = {tok.vocab_size}), "
          f"{args.episodes} D-inBC episodes per row")
    for label, r in res.items():
        print(f"  {label:28s} {r['passes']:6.1f} vs free {r['free']:6.1f}  ratio {r['ratio']:.3f}")
    print(json.dumps({"episodes": args.episodes, "vocab": tok.vocab_size, "rows": res},
                     sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
