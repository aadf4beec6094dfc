"""Passes per LLaRA action on the REAL LLaMA-2 vocabulary with object names restricted to the
prompt's mentions (RuntimeConfig.names_from_prompt) and without (the default).

    python -m llara_bench.bench_names [--vocab GGUF] [--episodes 200]

Episodes are VIMA-style D-inBC prompts with VIMA's long texture + shape names (up to the
49-byte "yellow and purple polka dot three-sided rectangle"): visual manipulation
("Put the {dragged} into the {base}."), rotate, and scene understanding (the dragged object
inside a `<scene>` block of 2..4 objects, the task naming it by its texture only). The
answer names the dragged object (always one of the prompt's mentions: the case a
restriction can help; released models name an object the prompt does not mention in 47% of
their answers, where a restriction would change the name) with its pick point at
its box centre ("at centres") or moved by up to 0.02 / 0.06 per axis ("off centres").
The decoder is the runtime's (decoding.answer_views.AnswerViews over the grammar Policy
compiles: steps 1..32, both header forms, generic names of up to 64 bytes; numbering
"numbered"; the forced opening in the prefill, not counted), driven by a teacher that ranks
the answer's llama.cpp tokens first (bench_passes_real.DraftTeacher); drafts are the
runtime's prompt lookup over the prompt's tokens after the image (default config).
Prints a table, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from llara_bench.bench_passes_real import decode_passes, near, random_box, runtime_grammar
from llara_edge.actions import PickPlaceAction
from llara_edge.decoding.answer_views import AnswerViews
from llara_edge.decoding.prompt_lookup import PromptLookupConfig, whitespace_aliases
from llara_edge.formats import (
    LlaraPrompt,
    ObjectRef,
    SceneRef,
    format_answer,
    policy_format,
)

TEXTURES = ("red", "green", "yellow", "granite", "dark red swirl", "green paisley",
            "red and purple stripe", "yellow and blue polka dot", "yellow and purple polka dot")
SHAPES = ("block", "bowl", "pan", "letter M", "L-shaped block", "pentagon", "heart",
          "three-sided rectangle")
SPREADS = {"at centres": 0.0, "off centres": 0.02}


def episode(rng: np.random.Generator, spread: float) -> tuple[str, str]:
    """(user text, answer) of one D-inBC step whose answer names the dragged object."""
    textures = [str(t) for t in rng.choice(TEXTURES, 4, replace=False)]
    names = [f"{t} {rng.choice(SHAPES)}" for t in textures]
    dragged, base = random_box(rng, (0.05, 0.12)), random_box(rng, (0.12, 0.25))
    family = int(rng.integers(3))
    if family == 0:
        prompt = LlaraPrompt("Put the {dragged} into the {base}.", assets={
            "dragged": ObjectRef(names[0], dragged), "base": ObjectRef(names[1], base)})
    elif family == 1:
        prompt = LlaraPrompt("Rotate the {dragged} 120 degrees.",
                             assets={"dragged": ObjectRef(names[0], dragged)})
    else:
        scene = [(names[0], dragged)] + [(n, random_box(rng, (0.05, 0.12)))
                                  for n in names[2:2 + rng.integers(1, 3)]]
        order = rng.permutation(len(scene))
        prompt = LlaraPrompt(f"Put the {textures[0]} object in {{scene}} into the "
                             f"{textures[1]} object.",
                             assets={"scene": SceneRef(tuple(scene[i] for i in order))})
    pick = near(rng, dragged[:2], spread) if spread else dragged[:2]
    place = pick if family == 1 else base[:2]
    place = near(rng, place, 3 * spread) if spread else place
    action = PickPlaceAction(pick, place, 120 if family == 1 else 0, object_name=names[0])
    return prompt.render(), format_answer([action], first_point_spaces=2)


def run(tok, base, n: int, names_from_prompt: bool, drafts: bool, spread: float,
        seed: int = 0) -> dict:
    """Mean passes per action (and free greedy's tokens) over `n` episodes, decoded through
    the runtime's answer views (bench_passes_real.decode_passes with their opening)."""
    rng = np.random.default_rng(seed)
    views = AnswerViews(base, policy_format("llara"), "numbered", names_from_prompt)
    draft = PromptLookupConfig() if drafts else None
    aliases = whitespace_aliases(base.vocab.token_bytes) if drafts else None
    passes = tokens = 0
    for _ in range(n):
        user, answer = episode(rng, spread)
        p, t = decode_passes(tok, base, user, answer, draft, opening=views.opening,
                             aliases=aliases)
        passes, tokens = passes + p, tokens + t
    return {"passes": passes / n, "free": tokens / n, "ratio": passes / tokens}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=Path)
    ap.add_argument("--episodes", type=int, default=200)
    args = ap.parse_args(argv)
    loaded = runtime_grammar(args.vocab)
    if loaded is None:
        return 2
    tok, base = loaded
    rows = {f"{answers}/{'drafts' if drafts else 'no drafts'}/"
            f"{'names from prompt' if restrict else 'generic names'}":
            run(tok, base, args.episodes, restrict, drafts, spread)
            for answers, spread in SPREADS.items() for drafts in (False, True)
            for restrict in (False, True)}
    print(f"passes per LLaRA action, real vocabulary (V = {tok.vocab_size}), "
          f"{args.episodes} VIMA-named D-inBC episodes per row")
    for label, r in rows.items():
        print(f"  {label:48s} {r['passes']:6.2f} vs free {r['free']:6.1f}  ratio {r['ratio']:.3f}")
    print(json.dumps({"episodes": args.episodes, "vocab": tok.vocab_size, "rows": rows},
                     sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
