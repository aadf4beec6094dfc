"""Realistic LLaRA prompts and answers for the pass-count and 7B-shaped benchmarks (issue 27).

Contract:
    ep = vima_episode(rng, task=None, max_name_bytes=NAME_MAX_BYTES) -> Episode
        ep.task (VIMA task), ep.user_text (the D-inBC user prompt as LLaRA's eval writes it,
        "You have finished:" history included), ep.answer (every remaining step, one
        "Step k: ..." line each: what the released checkpoints write to </s>),
        ep.first_line (the step the runtime's grammar decodes), ep.actions, ep.history
        (steps already done), ep.name_in_prompt (the first line's <p>name</p> is in the prompt)
    answer_for_prompt(user_text, rng, max_name_bytes=NAME_MAX_BYTES) -> str
        # one step, any D-inBC prompt
    seeded_answer(user_text) -> str     # answer_for_prompt seeded by the text: same per prompt

Episodes: a VIMA task drawn with the weights of LLaRA's released evaluation (its episodes per
task), built by benchmarks/llara_bench/vima_tasks.py (where the points, boxes, names and
rotations come from, with their sources), then one of its oracle steps: every step of an
evaluated episode is one query, so an episode of n steps is kept with probability
n / MAX_STEPS and its step is uniform. The prompt has a random action paraphrase (the eval's
"hso" runs) and a history written with two spaces in the first point, as the released runs.
answer_for_prompt applies the same rules to a prompt that boxes the objects where they stand
(the project's simulator prompts): the first object mentioned is the one moved, its name
copied; pick uniform over its box, place uniform over the last object's box (a free scene
point with one object), rotation uniform over (-180, 180] (0 for the spatula), a "Rotate
the X N degrees." task turns N in place.
Answer names longer than `max_name_bytes` (default: the runtime grammar's compiled bound,
decoding.answer_grammars.NAME_MAX_BYTES = 64) are redrawn; none is in practice (the longest
generated name is 42 bytes).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from llara_bench.vima_tasks import (
    SHAPES,
    SPACES,
    TASKS,
    far,
    tex,
    truncated,
    turn,
)
from llara_edge.actions import PickPlaceAction
from llara_edge.decoding.answer_grammars import NAME_MAX_BYTES
from llara_edge.formats import LlaraPrompt, format_answer, next_step_number
from llara_edge.formats.llara import FORMAT_PROMPTS
from llara_edge.formats.paraphrases import ACTION_PROMPTS

MAX_STEPS = 6  # the longest oracle episode built (rearrange_then_restore, 3 objects)
_NUM = r"(\d\.\d{3})"
_OBJ_RE = re.compile(rf"<p>([^<]+)</p> at <b>\({_NUM}, {_NUM}\), \{{{_NUM}, {_NUM}\}}</b>")
_ROTATE_RE = re.compile(r"Rotate the .+? (\d+) degrees")


@dataclass(frozen=True)
class Episode:
    task: str
    user_text: str
    answer: str
    actions: tuple[PickPlaceAction, ...]
    history: int
    name_in_prompt: bool

    @property
    def first_line(self) -> str:
        return self.answer.split("\n", 1)[0]


def _fits(steps, max_name_bytes: int) -> bool:
    return all(len(s.object_name.encode()) <= max_name_bytes for s in steps)


def vima_episode(rng: np.random.Generator, task: str | None = None,
                 max_name_bytes: int = NAME_MAX_BYTES) -> Episode:
    """One query of LLaRA's VIMA evaluation: prompt, history and the remaining steps."""
    names = list(TASKS)
    weights = np.array([TASKS[n].weight for n in names], float)
    while True:
        name = task or str(rng.choice(names, p=weights / weights.sum()))
        template, assets, steps = TASKS[name].build(rng)
        if task is None and rng.random() >= len(steps) / MAX_STEPS:
            continue  # queries, not episodes: an n-step episode is asked n times
        if _fits(steps, max_name_bytes):
            break
    k = int(rng.integers(len(steps)))
    prompt = LlaraPrompt(template, assets=assets, tool=steps[0].tool,
                         paraphrase=int(rng.integers(len(ACTION_PROMPTS))),
                         history_first_point_spaces=SPACES)
    user = prompt.render(steps[:k])
    answer = format_answer(steps[k:], first_step=k + 1, first_point_spaces=SPACES)
    return Episode(name, user, answer, tuple(steps[k:]), k,
                   f"<p>{steps[k].object_name}</p>" in user)


def _in_box(rng: np.random.Generator, box: tuple[float, ...]) -> tuple[float, float]:
    cx, cy, w, h = box
    return tuple(round(float(np.clip(c + rng.uniform(-s / 2, s / 2), 0.0, 1.0)), 3)
                 for c, s in ((cx, w), (cy, h)))


def answer_for_prompt(user_text: str, rng: np.random.Generator,
                      max_name_bytes: int = NAME_MAX_BYTES) -> str:
    """One realistic step for a D-inBC prompt whose boxes are where the objects stand."""
    task = user_text.split("<task>", 1)[-1].split("</task>", 1)[0]
    objs = [(m[0], tuple(float(v) for v in m[1:])) for m in _OBJ_RE.findall(task)]
    tool = "spatula" if FORMAT_PROMPTS["spatula"] in user_text else "suction"
    name = objs[0][0] if objs and len(objs[0][0].encode()) <= max_name_bytes else None
    while name is None or len(name.encode()) > max_name_bytes:
        name = f"{tex(rng)} {rng.choice(SHAPES)}"
    pick = _in_box(rng, objs[0][1]) if objs else far(rng)
    rotate = _ROTATE_RE.search(task)
    if rotate:
        place = tuple(round(float(np.clip(v + rng.uniform(-0.02, 0.02), 0, 1)), 3)
                      for v in pick)
        rot = truncated(rng, int(rotate.group(1)))
    else:
        place = _in_box(rng, objs[-1][1]) if len(objs) > 1 else far(rng)
        rot = 0 if tool == "spatula" else turn(rng)
    action = PickPlaceAction(pick, place, rot, tool=tool, object_name=name)
    return format_answer([action], first_step=next_step_number(user_text),
                         first_point_spaces=SPACES)


def seeded_answer(user_text: str, max_name_bytes: int = NAME_MAX_BYTES) -> str:
    """answer_for_prompt with a generator seeded by the prompt (crc32): one answer per text."""
    rng = np.random.default_rng(zlib.crc32(user_text.encode("utf-8")))
    return answer_for_prompt(user_text, rng, max_name_bytes)
