"""Procedural text-only D-inBC samples: the copy curriculum of the tiny policy.

Contract:

    rng = np.random.default_rng(seed)
    rec = synthetic_dinbc(rng, SynthConfig())       # -> training.data.Record, image None
    recs = synthetic_set(n, seed, SynthConfig())    # n of them, deterministic in (n, seed)

Each sample is a visual_manipulation or rotate instruction in LLaRA's D-inBC form with
random object names from the simulator's catalogue and random boxes, e.g.

    <task>Put the <p>cyan block</p> at <b>(0.443, 0.569), {0.076, 0.114}</b> into the
    <p>orange pan</p> at <b>(0.698, 0.594), {0.226, 0.240}</b>.</task>
    -> Step 1: Pick up the <p>cyan block</p> at <b>(0.443, 0.569)</b>, rotate <r>[0]</r>
       degrees, and drop it at <b>(0.698, 0.594)</b>.

i.e. the answer's points are the box centres copied from the task line (rotate: the same
point twice and the instruction's angle). `short=True` keeps only the <task> line as a
plain-text sample without the conversation template (Record.raw: "<s>{task}\n{answer}</s>",
LM-pretraining style), otherwise the prompt is LlaraPrompt.render() without the image tag
(format line, optional paraphrase line) inside the vicuna_v1 conversation.

Why: a randomly initialised LLaMA has no copy mechanism, and from the simulator's few
thousand scenes it memorises answers long before it learns to read the boxes. Random boxes
make copying the only way to lower the loss; on this machine the copy circuit appeared after
about 200 batches of 16 short raw samples (measured: answer digit accuracy 0.50 -> 0.93
between steps 150 and 200, 3-layer LLM), and not within 450 batches of the same samples
inside the conversation template (its long constant system prompt in front). These samples
are the analogue of LLaVA-1.5's text-only conversations; the simulator's own D-inBC data
(with images and the expert's box-centre points, and their box-shifted copies of
training.augment) then teaches the real task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.errors import ConfigError
from llara_edge.formats import ACTION_PROMPTS, LlaraPrompt, format_answer
from llara_edge.sim.catalog import COLOUR_NAMES, CONTAINER_NAMES, SHAPE_NAMES
from llara_edge.sim.tasks import ROTATE_ANGLES_DEG, TASK_REGISTRY
from llara_export.training.data import Record

SHORT_GROUP = "synth/short"
FULL_GROUP = "synth/full"


@dataclass(frozen=True)
class SynthConfig:
    """Box ranges (normalised image units) and the mix of the generated samples."""

    centre_x: tuple[float, float] = (0.08, 0.92)
    centre_y: tuple[float, float] = (0.15, 0.92)
    size: tuple[float, float] = (0.04, 0.30)  # width and height
    rotate_prob: float = 0.25  # else visual_manipulation
    paraphrase_prob: float = 0.3  # full prompts only
    short: bool = True

    def __post_init__(self) -> None:
        for lo, hi in (self.centre_x, self.centre_y, self.size):
            if not 0 < lo < hi < 1:
                raise ConfigError(f"ranges must satisfy 0 < lo < hi < 1, got {(lo, hi)}")
        if not (0 <= self.rotate_prob <= 1 and 0 <= self.paraphrase_prob <= 1):
            raise ConfigError("rotate_prob and paraphrase_prob must be in [0, 1]")


def _box(rng: np.random.Generator, cfg: SynthConfig) -> tuple[float, float, float, float]:
    """(cx, cy, w, h) rounded to the 3 decimals the prompts print."""
    vals = (rng.uniform(*cfg.centre_x), rng.uniform(*cfg.centre_y),
            rng.uniform(*cfg.size), rng.uniform(*cfg.size))
    return tuple(round(float(v), 3) for v in vals)


def _name(rng: np.random.Generator, kinds: tuple[str, ...]) -> str:
    return f"{COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]} {kinds[rng.integers(len(kinds))]}"


def synthetic_dinbc(rng: np.random.Generator, cfg: SynthConfig | None = None) -> Record:
    """One random D-inBC instruction and its box-centre answer (see the module docstring)."""
    cfg = cfg or SynthConfig()
    obj, first = _name(rng, SHAPE_NAMES), _box(rng, cfg)
    if rng.random() < cfg.rotate_prob:
        deg = int(ROTATE_ANGLES_DEG[rng.integers(len(ROTATE_ANGLES_DEG))])
        instruction = TASK_REGISTRY["rotate"].template.format(obj=obj, deg=deg)
        objects = {obj: first}
        action = PickPlaceAction(first[:2], first[:2], deg, "suction", obj)
    else:
        container, second = _name(rng, CONTAINER_NAMES), _box(rng, cfg)
        instruction = TASK_REGISTRY["visual_manipulation"].template.format(
            obj=obj, container=container)
        objects = {obj: first, container: second}
        action = PickPlaceAction(first[:2], second[:2], 0, "suction", obj)
    paraphrase = None
    if not cfg.short and rng.random() < cfg.paraphrase_prob:
        paraphrase = int(rng.integers(len(ACTION_PROMPTS)))
    lines = LlaraPrompt(instruction, objects, paraphrase=paraphrase).render().split("\n")[1:]
    prompt = lines[0] if cfg.short else "\n".join(lines)  # [0] is the <task> line
    return Record(SHORT_GROUP if cfg.short else FULL_GROUP, None, prompt,
                  format_answer([action]), raw=cfg.short)


def synthetic_set(n: int, seed: int, cfg: SynthConfig | None = None) -> list[Record]:
    """`n` samples, deterministic in (n, seed, cfg)."""
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng([seed, 0x5EED])
    return [synthetic_dinbc(rng, cfg) for _ in range(n)]
