"""LLM passes per LLaRA action on the REAL LLaMA-2 vocabulary: the runtime's constrained
decoder (forced runs + prompt-lookup drafts) vs free greedy, on whole prompts.

    python -m llara_bench.bench_passes_real [--vocab GGUF] [--episodes 300] [--seed 0]

Answers (rows):
- realistic: queries of LLaRA's VIMA-Bench evaluation as its checkpoints answer them
  (benchmarks/llara_bench/vima_answers.py; the distribution and its sources are in
  docs/formats.md, "Realistic answers"): prompt boxes of the prompt assets (mostly at the
  image centre), points on the 256 x 128 pixel grid where the oracle acts (rarely in the
  prompt), names not always in the prompt, rotations as the oracle turns;
- synthetic (the earlier rows, for comparison): simple D-inBC prompts whose answers pick at
  the dragged object's box centre and place at the base's ("at box centres"), or off them by
  up to 0.02 / 0.06 per axis ("off centres").
The model is a teacher that ranks the answer's own llama.cpp tokens first (anything after a
wrong draft token is wrong too, so rejected drafts cost what they cost a real model: their
pass and a rollback). The decoder is the runtime's as runtime.policy configures it: the
generic-name LLaRA grammar with step numbers 1..32 and its step-header view under the
numbering of a checkpoint that records numbered answers (--numbering), the forced opening in
the prefill (not counted, as in the runtime), prompt-lookup drafts
(PromptLookupConfig(max_draft=RuntimeConfig().draft_tokens), whitespace aliases on) over the
prompt's tokens after the image. Free greedy is one pass per token of the first line (+ the
EOS pass); "whole" is the whole answer a released checkpoint writes (every remaining step), HF
generate's length on that query.
Prints the markdown tables (docs/formats.md), then ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from llara_bench.bench_grammar_vocab import default_vocab
from llara_bench.vima_answers import vima_episode
from llara_edge.actions import PickPlaceAction
from llara_edge.decoding.constrained_decode import Lookahead, decode_constrained, prefill_prefix
from llara_edge.decoding.prompt_lookup import PromptLookup, PromptLookupConfig, whitespace_aliases
from llara_edge.decoding.step_header import StepHeader
from llara_edge.decoding.token_grammar import compile_grammar
from llara_edge.formats import (
    LlaraPrompt,
    ObjectRef,
    build_prompt,
    format_answer,
    next_step_number,
    policy_format,
)
from llara_edge.formats.templates import IMAGE_TOKEN_INDEX
from llara_edge.runtime.config import RuntimeConfig
from llara_edge.runtime.policy import grammar_options

COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "red and purple stripe",
          "green paisley", "granite", "dark blue")
SHAPES = ("block", "bowl", "pan", "heart", "cross", "ring", "L-shaped block", "pentagon",
          "letter R", "triangle")
TEMPLATES = ("Put the {dragged} into the {base}.",
             "Put the {dragged} into the {base}. Then put the {other} into the {base}.",
             "This is a dax {dragged}. This is a blicket {base}. Put a dax into a blicket.",
             "Rotate the {dragged} {angle} degrees.")


# answers: realistic (None) / synthetic with points at the box centres (all digits in the
# prompt) / off them by up to 0.02 (pick) and 0.06 (place) per axis
REALISTIC = "realistic (VIMA-Bench queries)"
SPREADS = {REALISTIC: None, "synthetic, at box centres": 0.0,
           "synthetic, off box centres": 0.02}


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


def random_box(rng, w=(0.04, 0.12)) -> tuple[float, float, float, float]:
    """A box (cx, cy, w, h) inside the image, sides drawn from `w`, 3 decimals."""
    cx, cy = (round(float(v), 3) for v in rng.uniform(0.1, 0.9, 2))
    bw, bh = (round(float(v), 3) for v in rng.uniform(*w, 2))
    return cx, cy, bw, bh


def near(rng, point, spread: float) -> tuple[float, float]:
    """`point` moved by up to `spread` per axis (a pick or place off the box centre)."""
    return tuple(round(float(np.clip(v + rng.uniform(-spread, spread), 0, 1)), 3)
                 for v in point)


def episode(rng: np.random.Generator, spread: float = 0.0) -> tuple[str, str]:
    """(user text, answer) of one random D-inBC step; `spread` > 0 moves the pick and place
    points off the box centres (as demonstrations do), so their digits are not all copied."""
    names = [f"{c} {s}" for c, s in zip(rng.choice(COLORS, 3, replace=False),
                                        rng.choice(SHAPES, 3, replace=False), strict=True)]
    template = str(rng.choice(TEMPLATES))
    boxes = {"dragged": random_box(rng), "base": random_box(rng, (0.12, 0.25)),
             "other": random_box(rng)}
    assets = {k: ObjectRef(n, boxes[k]) for k, n in zip(("dragged", "base", "other"), names,
                                                        strict=True)
              if "{" + k + "}" in template}
    angle = int(rng.choice([30, 45, 60, 90, 120, 150, 180]))
    prompt = LlaraPrompt(template.replace("{angle}", str(angle)), assets=assets,
                         paraphrase=int(rng.integers(0, 15)) if rng.random() < 0.5 else None)
    k = int(rng.integers(0, 5))
    hist = [PickPlaceAction(random_box(rng)[:2], random_box(rng)[:2], 0) for _ in range(k)]
    pick = near(rng, boxes["dragged"][:2], spread) if spread else boxes["dragged"][:2]
    rotate = template.startswith("Rotate")
    place = pick if rotate else boxes["base"][:2]
    place = near(rng, place, 3 * spread) if spread else place
    action = PickPlaceAction(pick, place, angle if rotate else 0, object_name=names[0])
    answer = format_answer([action], first_step=k + 1, first_point_spaces=1 + int(rng.random()
                                                                                   < 0.5))
    return prompt.render(hist), answer


def _episodes(n: int, spread: float | None, seed: int):
    """(VIMA task or None, name in prompt or None, user text, first line, whole answer) x n:
    realistic VIMA queries (spread None) or the synthetic episodes above."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        if spread is None:
            ep = vima_episode(rng)
            yield ep.task, ep.name_in_prompt, ep.user_text, ep.first_line, ep.answer
        else:
            user, answer = episode(rng, spread)
            yield None, None, user, answer, answer


# The numbering a checkpoint trained on numbered answers records in its manifest (LLaRA's
# released D-inBC models, models/tiny-llara), so the one the runtime decodes those with.
NUMBERING = "numbered"


def step_opening(base, numbering: str = NUMBERING):
    """user text -> (view, forced opening ids, state): the runtime's step-header view for the
    step the prompt asks for, its forced opening prefilled."""
    def opening(user: str) -> tuple:
        view = StepHeader(base, next_step_number(user), numbering)
        return (view, *prefill_prefix(view))
    return opening


def decode_passes(tok, base, user: str, answer: str, draft: PromptLookupConfig | None,
                  numbering: str = NUMBERING, opening=None,
                  aliases: dict | None = None) -> tuple[int, int]:
    """(forward passes, answer tokens) of the runtime's decoder reproducing `answer` (one
    step) for `user`; RuntimeError when it does not come back token for token. `opening`:
    user text -> (view, opening ids, state) (default step_opening(base, numbering));
    `aliases`: the drafts' whitespace aliases (default: computed from base's vocabulary)."""
    ids = tok.tokenizer_image_token(build_prompt("vicuna_v1", user))
    tail = ids[ids.index(IMAGE_TOKEN_INDEX) + 1:]
    target = tok.encode(answer)
    view, prefix, state = (opening or step_opening(base, numbering))(user)
    model = DraftTeacher(target, base.n_vocab, tok.eos_id, prefix)
    look = None
    if draft is not None:
        if aliases is None:
            aliases = whitespace_aliases(base.vocab.token_bytes)
        lookup = PromptLookup(tail, draft, aliases)
        look = Lookahead(lambda a, lk=lookup, op=prefix: lk([*op, *a]), model.rollback,
                         lookup.feedback)
    result = decode_constrained(model.extend, view, model.first(), 256, state, look)
    if prefix + result.tokens != target or not result.complete:
        raise RuntimeError(f"decoding lost the answer {answer!r}")
    return result.n_forward_passes, len(target)


def decode_episodes(tok, base, n: int, draft: PromptLookupConfig | None,
                    spread: float | None = 0.0, seed: int = 0,
                    numbering: str = NUMBERING) -> list[tuple]:
    """Per episode: (VIMA task or None, name in prompt or None, passes, first-line tokens,
    whole-answer tokens)."""
    aliases = None if draft is None else whitespace_aliases(base.vocab.token_bytes)
    out = []
    for task, named, user, first, answer in _episodes(n, spread, seed):
        p, t = decode_passes(tok, base, user, first, draft, numbering, aliases=aliases)
        out.append((task, named, p, t, len(tok.encode(answer))))
    return out


def summary(episodes: list[tuple]) -> dict:
    """Mean passes, free greedy's first-line tokens (+ EOS: one pass each) and whole-answer
    tokens over decode_episodes' rows."""
    n = len(episodes)
    passes, tokens, whole = (sum(e[k] for e in episodes) for k in (2, 3, 4))
    return {"passes": passes / n, "free": tokens / n, "free_whole": whole / n,
            "ratio": passes / tokens}


def run(tok, base, n: int, draft: PromptLookupConfig | None, spread: float | None = 0.0,
        seed: int = 0, numbering: str = NUMBERING) -> dict:
    """summary() of n episodes (`spread` None: realistic VIMA queries)."""
    return summary(decode_episodes(tok, base, n, draft, spread, seed, numbering))


def per_task(episodes: list[tuple]) -> dict:
    """Realistic queries by VIMA task: {task: {"n", "passes", "free", "name_in_prompt"}}."""
    rows: dict[str, list[tuple]] = {}
    for e in episodes:
        rows.setdefault(e[0], []).append(e)
    return {k: {"n": len(r), "passes": sum(e[2] for e in r) / len(r),
                "free": sum(e[3] for e in r) / len(r),
                "name_in_prompt": sum(e[1] for e in r) / len(r)} for k, r in sorted(rows.items())}


def _table(res: dict, n: int) -> str:
    lines = [f"| answers ({n} queries each) | no drafts | drafts (runtime default) | "
             "free greedy, first line | whole answer |", "|---|---|---|---|---|"]
    for answers in SPREADS:
        none, drafts = res[f"{answers}/no drafts"], res[f"{answers}/drafts"]
        lines.append(f"| {answers} | {none['passes']:.1f} ({none['ratio']:.3f}) | "
                     f"{drafts['passes']:.1f} ({drafts['ratio']:.3f}) | {none['free']:.1f} | "
                     f"{none['free_whole']:.1f} |")
    return "\n".join(lines)


def _task_table(tasks: dict) -> str:
    lines = ["| VIMA task | queries | passes (drafts) | free greedy | ratio | name in prompt |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {r['n']} | {r['passes']:.1f} | {r['free']:.1f} | "
              f"{r['passes'] / r['free']:.3f} | {r['name_in_prompt']:.0%} |"
              for k, r in tasks.items()]
    return "\n".join(lines)


def runtime_grammar(vocab: Path | None) -> tuple | None:
    """(tokenizer, the LLaRA grammar Policy.load compiles under RuntimeConfig()) on the real
    vocabulary at `vocab` (default: the cached one); None, after saying why, without it."""
    from llara_edge.models.gguf_tokenizer import GgufTokenizer

    path = vocab or default_vocab()
    if not path.is_file():
        print(f"no vocabulary at {path}: run tests/test_gguf_tokenizer.py once", file=sys.stderr)
        return None
    tok = GgufTokenizer(path)
    options = grammar_options(policy_format("llara"), "llara", RuntimeConfig())
    return tok, compile_grammar("llara", tok, n_vocab=tok.vocab_size, **options)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=Path)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--numbering", default=NUMBERING, choices=("numbered", "unnumbered", "either"),
                    help="the step-header rule decoded with (numbered: what a checkpoint "
                    "trained on numbered answers records; either: no record)")
    args = ap.parse_args(argv)
    loaded = runtime_grammar(args.vocab)
    if loaded is None:
        return 2
    tok, base = loaded
    runtime = RuntimeConfig()
    drafts = PromptLookupConfig(max_draft=runtime.draft_tokens)
    episodes = {f"{answers}/{label}": decode_episodes(tok, base, args.episodes, cfg, spread,
                                                      args.seed, args.numbering)
                for answers, spread in SPREADS.items()
                for label, cfg in (("no drafts", None), ("drafts", drafts))}
    res = {key: summary(rows) for key, rows in episodes.items()}
    tasks = per_task(episodes[f"{REALISTIC}/drafts"])
    print(f"Passes per LLaRA action, real vocabulary (V = {tok.vocab_size}), numbering "
          f"{args.numbering!r}, draft_tokens {runtime.draft_tokens}, seed {args.seed} "
          "(passes, ratio to free greedy's first line in brackets):\n")
    print(_table(res, args.episodes) + "\n\nRealistic queries by VIMA task (drafts):\n")
    print(_task_table(tasks) + "\n")
    print(json.dumps({"episodes": args.episodes, "seed": args.seed, "vocab": tok.vocab_size,
                      "numbering": args.numbering, "draft_tokens": runtime.draft_tokens,
                      "rows": res, "tasks": tasks}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
