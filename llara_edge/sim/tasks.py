"""Task families and levels (VIMA-Bench style), as a registry of data.

A `TaskInstance` is a pure function of (family, level, seed, workspace, camera view): the
instruction, the scene items with their poses, which names the task is about and its step
budget. Levels:
- L1, the training distribution: seen colour x shape combinations, the anchor item (the
  container, or the object to rotate / reach) in the outer band of the reachable annulus,
  visual_manipulation pairs shapes and container kinds with even (shape + kind) index.
- L2, new placements and combinations: anchor in the inner band (never used at L1), odd
  shape/container pairings, more distractors.
- L3, held-out colour x shape combinations (catalog.HELD_OUT_COMBOS) for the task's objects;
  these never appear, not even as distractors, at L1 or L2.
Rotations are clockwise seen from above, in degrees, as in LLaRA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llara_edge.errors import SimError
from llara_edge.sim.catalog import (
    COLOUR_NAMES,
    CONTAINER_NAMES,
    HELD_OUT_COMBOS,
    SEEN_COMBOS,
    SHAPE_NAMES,
)
from llara_edge.sim.layout import InView, Slot, Workspace, sample_layout
from llara_edge.sim.objects import SceneItem

LEVELS = ("L1", "L2", "L3")
ROTATE_ANGLES_DEG = (30, 60, 90, 120, 150)


@dataclass(frozen=True)
class LevelRule:
    """How a level draws its scenes."""

    held_out: bool  # task objects from HELD_OUT_COMBOS instead of SEEN_COMBOS
    anchor_band: tuple[float, float]  # radial band (fractions of the annulus) of the anchor
    distractors: int  # extra objects
    distractor_containers: int  # extra containers (families that use a container)
    pairing_parity: int | None  # visual_manipulation: (shape + kind index) % 2; None = any


LEVEL_RULES: dict[str, LevelRule] = {
    "L1": LevelRule(False, (0.45, 1.0), 1, 1, 0),
    "L2": LevelRule(False, (0.0, 0.45), 2, 1, 1),
    "L3": LevelRule(True, (0.45, 1.0), 1, 1, None),
}


@dataclass(frozen=True)
class Draft:
    """What a family sampler chose before placement: names, not poses."""

    targets: tuple[tuple[str, str], ...]  # (colour, shape) of the objects acted on
    container: tuple[str, str] | None  # (colour, kind)
    fields: dict[str, object]  # instruction template fields beyond obj / container
    rotation_deg: int = 0


@dataclass(frozen=True)
class TaskInstance:
    """One sampled episode: everything a policy prompt and a success check need."""

    family: str
    level: str
    seed: int
    instruction: str
    items: tuple[SceneItem, ...]
    targets: tuple[str, ...]  # names of the objects the task is about
    container: str | None
    rotation_deg: int  # clockwise degrees asked for (rotate), 0 otherwise
    max_steps: int
    control: str  # "pick_place" (LLaRA) or "joint" (LLARVA)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the instruction involves."""
        return self.targets + ((self.container,) if self.container else ())

    def item(self, name: str) -> SceneItem:
        for it in self.items:
            if it.name == name:
                return it
        raise SimError(f"no item named {name!r} in this task")


def _pick(rng: np.random.Generator, pool: list) -> object:
    if not pool:
        raise SimError("empty pool while sampling a task")
    return pool[int(rng.integers(len(pool)))]


def _pool(rule: LevelRule) -> list[tuple[str, str]]:
    return list(HELD_OUT_COMBOS if rule.held_out else SEEN_COMBOS)


def _container(rng: np.random.Generator) -> tuple[str, str]:
    return (_pick(rng, list(COLOUR_NAMES)), _pick(rng, list(CONTAINER_NAMES)))


def _draft_visual_manipulation(rng: np.random.Generator, rule: LevelRule) -> Draft:
    colour, kind = _container(rng)
    k = CONTAINER_NAMES.index(kind)
    pool = [(c, s) for c, s in _pool(rule) if rule.pairing_parity is None
            or (SHAPE_NAMES.index(s) + k) % 2 == rule.pairing_parity]
    return Draft((_pick(rng, pool),), (colour, kind), {})


def _draft_rotate(rng: np.random.Generator, rule: LevelRule) -> Draft:
    deg = int(_pick(rng, list(ROTATE_ANGLES_DEG)))
    return Draft((_pick(rng, _pool(rule)),), None, {"deg": deg}, rotation_deg=deg)


def _draft_scene_understanding(rng: np.random.Generator, rule: LevelRule) -> Draft:
    colour = _pick(rng, list(COLOUR_NAMES))
    shapes = [s for c, s in _pool(rule) if c == colour]
    n = min(len(shapes), int(rng.integers(2, 4)))  # 2 or 3 objects of that colour
    chosen = rng.choice(len(shapes), size=n, replace=False)
    box = (_pick(rng, [c for c in COLOUR_NAMES if c != colour]), _pick(rng, list(CONTAINER_NAMES)))
    return Draft(tuple((colour, shapes[i]) for i in sorted(chosen)), box, {"colour": colour})


def _draft_reach(rng: np.random.Generator, rule: LevelRule) -> Draft:
    return Draft((_pick(rng, _pool(rule)),), None, {})


@dataclass(frozen=True)
class TaskFamily:
    """Registry entry: instruction template, sampler, control mode and step budget."""

    template: str
    draft: Callable[[np.random.Generator, LevelRule], Draft]
    control: str
    steps: Callable[[Draft], int]  # max steps for a draft


TASK_REGISTRY: dict[str, TaskFamily] = {
    "visual_manipulation": TaskFamily("Put the {obj} into the {container}.",
                                      _draft_visual_manipulation, "pick_place", lambda d: 3),
    "rotate": TaskFamily("Rotate the {obj} {deg} degrees.", _draft_rotate, "pick_place",
                         lambda d: 3),
    "scene_understanding": TaskFamily("Put all the {colour} objects into the {container}.",
                                      _draft_scene_understanding, "pick_place",
                                      lambda d: len(d.targets) + 2),
    "reach": TaskFamily("Reach the {obj}.", _draft_reach, "joint", lambda d: 60),
}
TASK_FAMILIES = tuple(TASK_REGISTRY)


def _distractors(rng: np.random.Generator, draft: Draft, rule: LevelRule, family: str
                 ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Distractor objects (seen combos only) and containers with names unused so far."""
    avoid_colour = draft.fields.get("colour") if family == "scene_understanding" else None
    objs = [c for c in SEEN_COMBOS if c not in draft.targets and c[0] != avoid_colour]
    chosen = rng.choice(len(objs), size=rule.distractors, replace=False)
    boxes: list[tuple[str, str]] = []
    if draft.container is not None:
        pool = [(c, k) for c in COLOUR_NAMES for k in CONTAINER_NAMES
                if (c, k) != draft.container and c != avoid_colour]
        picks = rng.choice(len(pool), size=rule.distractor_containers, replace=False)
        boxes = [pool[i] for i in sorted(picks)]
    return [objs[i] for i in sorted(chosen)], boxes


def _place(rng: np.random.Generator, draft: Draft, objs: list[tuple[str, str]],
           boxes: list[tuple[str, str]], rule: LevelRule, ws: Workspace, in_view: InView
           ) -> tuple[SceneItem, ...]:
    """Scene items with sampled poses: the anchor (container or first target) in the level's
    band, everything else anywhere in the workspace."""
    shapes = [*draft.targets, *objs]
    containers = ([draft.container] if draft.container else []) + boxes
    probe = [SceneItem(c, s, 0.0, 0.0) for c, s in (*containers, *shapes)]
    slots = [Slot(it.radius if not it.is_container else 0.0, it.kind if it.is_container
                  else None) for it in probe]
    slots[0] = Slot(slots[0].radius, slots[0].container, rule.anchor_band)
    centres = sample_layout(rng, ws, slots, in_view)
    items = [SceneItem(it.colour, it.kind, float(p[0]), float(p[1]),
                       0.0 if it.is_container else float(rng.uniform(-np.pi, np.pi)))
             for it, p in zip(probe, centres, strict=True)]
    return tuple(items[len(containers):] + items[:len(containers)])


def sample_task(family: str, level: str, seed: int, ws: Workspace, in_view: InView
                ) -> TaskInstance:
    """Draw one episode deterministically from (family, level, seed)."""
    if family not in TASK_REGISTRY:
        raise SimError(f"unknown task family {family!r}; known: {TASK_FAMILIES}")
    if level not in LEVEL_RULES:
        raise SimError(f"unknown level {level!r}; known: {LEVELS}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SimError(f"seed must be a non-negative int, got {seed!r}")
    spec, rule = TASK_REGISTRY[family], LEVEL_RULES[level]
    rng = np.random.default_rng([int(seed), TASK_FAMILIES.index(family), LEVELS.index(level)])
    draft = spec.draft(rng, rule)
    objs, boxes = _distractors(rng, draft, rule, family)
    items = _place(rng, draft, objs, boxes, rule, ws, in_view)
    targets = tuple(f"{c} {s}" for c, s in draft.targets)
    container = f"{draft.container[0]} {draft.container[1]}" if draft.container else None
    text = spec.template.format(obj=targets[0], container=container, **draft.fields)
    return TaskInstance(family, level, int(seed), text, items, targets, container,
                        draft.rotation_deg, spec.steps(draft), spec.control)
