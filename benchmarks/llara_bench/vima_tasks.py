"""VIMA-Bench tasks as LLaRA prompts them and as VIMA's oracle answers them (issue 27 item 5).

Contract:
    TASKS: VIMA task name -> Task(weight, build); build(rng) -> (VIMA prompt template,
        assets {placeholder key: ObjectRef | SceneRef}, [PickPlaceAction per oracle step])
    pos2pix_front(i, j), placeholder / scene_obj (boxed objects), near / far (points)
benchmarks/llara_bench/vima_answers.py turns these into prompts and answers.

The distribution, derived from the code that builds LLaRA's data and prompts (docs/formats.md,
"Realistic answers", gives the file references and the checks against released answers):
- Points: LLaRA writes the oracle's pick/place poses through convert_vima.ipynb's
  pos2pix_front into the 256 x 128 front image, so every point is a pixel (x = px/256,
  y = py/128). The oracle (VIMA-Bench task_suite/base.py `oracle`) picks at a pixel drawn
  uniformly from the object's mask, not at its centre; `near(obj)` draws a pixel uniformly in
  the object's box. Scene positions come from get_random_pose (the workspace bounds eroded by
  the object): `_scene_pix`.
- Prompt boxes: eval/vima_utils.py prepare_prompt (mode 'o') boxes each object in its own
  prompt-asset image. A single object's asset is VIMA's PlaceholderObj, rendered alone at its
  default pose (0.5, 0, 0), so its box sits at the image centre (cx 0.500) whatever the
  scene: the answer's points are not in the prompt. Scene assets (rearrange goals, follow_order
  / follow_motion frames, twist demos) are boxed where their objects stand.
- Names: `<texture> <shape>` (obj_format) of the object the oracle moves, from VIMA's
  encyclopedia. Copied from the prompt where the task names that object; novel-concept
  prompts show it in neutral gray, same_shape / same_texture / twist never name it,
  manipulate_old_neighbor's second object is "the object previously at its west".
- Rotations: -int(yaw(place) - yaw(pick)); uniform over (-180, 180] where the oracle turns
  the object to a random target yaw, 0 where VIMA's goal ignores rotation (and always for the
  spatula), the prompt's angle for rotate, a demo's angle for twist; int() truncates, so a
  120 degree turn is written 119 or 120.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.formats import ObjectRef, SceneRef

Rng = np.random.Generator
W, H = 256, 128  # LLaRA's front-view frames (convert_vima.ipynb: 256 x 128)
SPACES = 2  # first point "(x,  y)": every first step of LLaRA's released eval runs

_C5 = ("red", "yellow", "green", "blue", "purple")  # the colours of VIMA's two-colour textures
COLOURS = (*_C5, "pink", "cyan", "olive", "orange")
TEXTURES = (COLOURS + tuple(f"{a} and {b} {k}" for k in ("stripe", "polka dot")
                            for a, b in itertools.combinations(_C5, 2))
            + tuple(f"{c} {k}" for k in ("swirl", "paisley") for c in _C5)
            + ("brick", "tiles", "wooden", "granite", "plastic", "polka dot", "checkerboard",
               "tiger", "magma", "rainbow"))
SHAPES = ("letter A", "letter E", "letter G", "letter M", "letter R", "letter T", "letter V",
          "cross", "diamond", "triangle", "flower", "heart", "hexagon", "pentagon",
          "L-shaped block", "ring", "round", "star", "block", "shorter block")
# front-view box (w, h) in pixels: dragged shapes vary, the rest as LLaRA's prompts box them
SIZES = {"bowl": (50, 42), "pan": (73, 30), "frame": (44, 32), "container": (40, 36),
         "pallet": (52, 34), "square": (60, 42), "three-sided rectangle": (80, 42),
         "line": (66, 6), "small block": (52, 74)}
BASES = ("bowl", "pan", "frame", "container", "pallet", "square")
NOUNS = ("dax", "blicket", "wug", "zup")  # novel_noun.py
ADJECTIVES = ("daxer", "blicker", "modier", "kobar")  # novel_adj.py


def pos2pix_front(i: float, j: float) -> tuple[int, int]:
    """VIMA workspace (i, j) metres -> front-image pixel (convert_vima.ipynb)."""
    return int((j + 0.5) * 251 + 3), int((i - 0.25) * 178 + 34)


def _scene_pix(rng: Rng) -> tuple[int, int]:
    # base.py bounds i 0.25..0.75, j -0.5..0.5, eroded by an object (get_random_pose)
    return pos2pix_front(rng.uniform(0.30, 0.72), rng.uniform(-0.42, 0.42))


def _pt(px: float, py: float) -> tuple[float, float]:
    """A pixel as the answer writes it: px / 256, py / 128 to 3 decimals."""
    x, y = int(np.clip(round(px), 0, W - 1)), int(np.clip(round(py), 0, H - 1))
    return round(x / W, 3), round(y / H, 3)


@dataclass(frozen=True)
class Obj:
    """An object as a prompt boxes it: name and front-view box (centre, size) in pixels."""

    name: str
    cx: int
    cy: int
    w: int
    h: int

    def ref(self) -> ObjectRef:
        return ObjectRef(self.name, (self.cx / W, self.cy / H, self.w / W, self.h / H))

    def line(self) -> tuple[str, tuple[float, float, float, float]]:
        return self.ref().name, self.ref().bbox


def _size(rng: Rng, shape: str) -> tuple[int, int]:
    if shape in SIZES:
        w, h = SIZES[shape]
        return w + int(rng.integers(-2, 3)), h + int(rng.integers(-1, 2))
    return int(rng.integers(18, 31)), int(rng.integers(16, 29))


def _kind(name: str) -> str:
    return next((s for s in SIZES if name.endswith(s)), "")


def placeholder(rng: Rng, name: str) -> Obj:
    """A prompt asset alone at PlaceholderObj's default pose: boxed at the image centre."""
    return Obj(name, 128, int(rng.integers(72, 81)), *_size(rng, _kind(name)))


def scene_obj(rng: Rng, name: str, pix: tuple[int, int] | None = None) -> Obj:
    """An object boxed where it stands in a scene asset (goal, frame, demo)."""
    return Obj(name, *(pix or _scene_pix(rng)), *_size(rng, _kind(name)))


def near(rng: Rng, o: Obj) -> tuple[float, float]:
    """The oracle's pick pixel: uniform over the object (its box)."""
    return _pt(o.cx + rng.uniform(-o.w / 2, o.w / 2), o.cy + rng.uniform(-o.h / 2, o.h / 2))


def far(rng: Rng) -> tuple[float, float]:
    """A scene position the prompt does not show."""
    return _pt(*_scene_pix(rng))


def jitter(rng: Rng, p: tuple[float, float], px: float) -> tuple[float, float]:
    return _pt(p[0] * W + rng.uniform(-px, px), p[1] * H + rng.uniform(-px, px))


def turn(rng: Rng) -> int:
    """A random target yaw: -int(yaw difference) over (-180, 180]."""
    return int(rng.integers(-179, 181))


def truncated(rng: Rng, angle: int) -> int:
    """`angle` as int() of a float yaw difference writes it: one less in magnitude at times."""
    if angle % 90 == 0 or rng.random() < 0.5:
        return angle
    return angle - 1 if angle > 0 else angle + 1


def tex(rng: Rng, avoid: tuple[str, ...] = ()) -> str:
    return str(rng.choice([t for t in TEXTURES if t not in avoid]))


def shape(rng: Rng, avoid: tuple[str, ...] = ()) -> str:
    return str(rng.choice([s for s in SHAPES if s not in avoid]))


def act(pick, place, rot: int, name: str, tool: str = "suction") -> PickPlaceAction:
    return PickPlaceAction(pick, place, rot, tool=tool, object_name=name)


Built = tuple[str, dict, list[PickPlaceAction]]  # (VIMA template, assets, every step)


def _named(rng: Rng, base: bool = False, avoid: tuple[str, ...] = ()) -> str:
    return f"{tex(rng, avoid)} {rng.choice(BASES) if base else shape(rng)}"


def visual_manipulation(rng: Rng) -> Built:
    d, b = placeholder(rng, _named(rng)), placeholder(rng, _named(rng, base=True))
    return ("Put the {dragged_obj_1} into the {base_obj}.",
            {"dragged_obj_1": d.ref(), "base_obj": b.ref()},
            [act(far(rng), far(rng), turn(rng), d.name)])


def rotate(rng: Rng) -> Built:
    d, angle = placeholder(rng, _named(rng)), 30 * int(rng.integers(1, 6))
    pick = far(rng)  # turned in place: the place point moves with the pick offset only
    return (f"Rotate the {{dragged_obj}} {angle} degrees.", {"dragged_obj": d.ref()},
            [act(pick, jitter(rng, pick, 6), truncated(rng, angle), d.name)])


def scene_understanding(rng: Rng) -> Built:
    t1, t2 = tex(rng), tex(rng)
    target = scene_obj(rng, f"{t1} {shape(rng)}")
    other = scene_obj(rng, _named(rng, avoid=(t1,)))
    scene = SceneRef(tuple(o.line() for o in rng.permutation([target, other])))
    return (f"Put the {t1} object in {{scene}} into the {t2} object.", {"scene": scene},
            [act(far(rng), far(rng), turn(rng), target.name)])


def twist(rng: Rng) -> Built:
    t, angle = tex(rng), 30 * int(rng.integers(1, 12))
    angle = angle - 360 if angle > 180 else angle
    demo = " ".join(f"From {{before_twist_{i}}} to {{after_twist_{i}}}." for i in (1, 2, 3))
    assets = {}
    for i in (1, 2, 3):
        o = scene_obj(rng, _named(rng, avoid=(t,)))
        assets[f"before_twist_{i}"] = SceneRef((o.line(),))
        turned = Obj(o.name, o.cx, o.cy + int(rng.integers(-2, 3)), *_size(rng, ""))
        assets[f"after_twist_{i}"] = SceneRef((turned.line(),))
    steps = []
    for _ in range(2):  # "twist all T objects": two of them
        pick = far(rng)
        steps.append(act(pick, jitter(rng, pick, 6), truncated(rng, angle), f"{t} {shape(rng)}"))
    return (f'"Twist" is defined as rotating object a specific angle. For examples: {demo} '
            f"Now twist all {t} objects.", assets, steps)


def _demos(rng: Rng, adj: str) -> tuple[str, dict]:
    text, assets = [], {}
    for i in (1, 2, 3):
        name = _named(rng)
        less = f"dark {name}" if rng.random() < 0.5 and name.split()[0] in _C5 else name
        assets[f"demo_blicker_obj_{i}"] = placeholder(rng, name).ref()
        assets[f"demo_less_blicker_obj_{i}"] = placeholder(rng, less).ref()
        text.append(f"{{demo_blicker_obj_{i}}} is {adj} than {{demo_less_blicker_obj_{i}}}.")
    return " ".join(text), assets


def _novel(rng: Rng, nouns: bool, adjective: bool) -> Built:
    s, b = shape(rng), str(rng.choice(BASES))
    # novel-concept prompts show the dragged and base objects in a neutral gray
    assets = {"dragged_obj": placeholder(rng, f"gray {s}").ref(),
              "base_obj": placeholder(rng, f"gray {b}").ref()}
    n1, n2 = (str(n) for n in rng.choice(NOUNS, 2, replace=False))
    adj = str(rng.choice(ADJECTIVES))
    parts, goal = [], "Put the {dragged_obj} into the {base_obj}."
    if nouns:
        parts = [f"This is a {n1} {{dragged_obj}}.", f"This is a {n2} {{base_obj}}."]
        parts = parts if rng.random() < 0.5 else parts[::-1]
        goal = f"Put a {n1} into a {n2}."
    if adjective:
        demo, demo_assets = _demos(rng, adj)
        parts.append(demo)
        assets.update(demo_assets)
        goal = (f"Put the {adj} {n1} into the {n2}." if nouns else
                f"Put the {adj} {{dragged_obj}} into the {{base_obj}}.")
    return (" ".join([*parts, goal]), assets,
            [act(far(rng), far(rng), turn(rng), f"{tex(rng)} {s}")])


def _scenes(rng: Rng, objs: list[Obj]) -> SceneRef:
    return SceneRef(tuple(o.line() for o in objs))


def follow_order(rng: Rng) -> Built:
    objs = [scene_obj(rng, f"{t} {shape(rng)}") for t in rng.choice(TEXTURES, 3, replace=False)]
    order = [objs[int(i)] for i in rng.permutation(3)]
    frames = {f"frame_{k}": _scenes(rng, order[k:] + order[:k]) for k in range(3)}
    steps = [act(near(rng, order[k]), near(rng, order[k + 1]), 0, order[k].name)
             for k in range(2)]
    return "Stack objects in this order {frame_0} {frame_1} {frame_2}.", frames, steps


def follow_motion(rng: Rng) -> Built:
    d = _named(rng)
    path = [scene_obj(rng, d) for _ in range(3)]
    other = scene_obj(rng, _named(rng))
    frames = {f"frame_{k}": _scenes(rng, [path[k], other]) for k in range(3)}
    steps = [act(near(rng, path[k]), near(rng, path[k + 1]), 0, d) for k in range(2)]
    return ("Follow this motion for {dragged_obj}: {frame_0} {frame_1} {frame_2}.",
            {"dragged_obj": placeholder(rng, d).ref(), **frames}, steps)


def _rearrange(rng: Rng, restore: bool) -> Built:
    goals = [scene_obj(rng, _named(rng)) for _ in range(int(rng.integers(2, 4)))]
    steps = [act(far(rng), near(rng, g), turn(rng), g.name) for g in goals]
    if restore:
        steps += [act(jitter(rng, s.place, 4), far(rng), turn(rng), s.object_name)
                  for s in steps]
        return ("Rearrange objects to this setup {scene} and then restore.",
                {"scene": _scenes(rng, goals)}, steps)
    return "Rearrange to this {scene}.", {"scene": _scenes(rng, goals)}, steps


def manipulate_old_neighbor(rng: Rng) -> Built:
    d, b = placeholder(rng, _named(rng)), placeholder(rng, _named(rng, base=True))
    side = str(rng.choice(("north", "south", "east", "west")))
    steps = [act(far(rng), far(rng), 0, d.name), act(far(rng), far(rng), 0, _named(rng))]
    return ("First put {dragged_obj} into {base_obj} then put the object that was previously "
            f"at its {side} into the same {{base_obj}}.",
            {"dragged_obj": d.ref(), "base_obj": b.ref()}, steps)


def pick_in_order_then_restore(rng: Rng) -> Built:
    d = placeholder(rng, _named(rng))
    b1, b2 = (placeholder(rng, _named(rng, base=True)) for _ in range(2))
    steps, pick = [], far(rng)
    for _ in range(3):  # into base 1, into base 2, back: each pick where it was dropped
        place = far(rng)
        steps.append(act(pick, place, 0, d.name))
        pick = jitter(rng, place, 4)
    return ("Put {dragged_obj} into {base_obj_1} then {base_obj_2}. Finally restore it into "
            "its original container.",
            {"dragged_obj": d.ref(), "base_obj_1": b1.ref(), "base_obj_2": b2.ref()}, steps)


def _same(rng: Rng, texture: bool) -> Built:
    b = placeholder(rng, _named(rng, base=True))
    t = b.name.rsplit(" ", 1)[0] if texture else None
    names = [f"{t or tex(rng)} {shape(rng)}" for _ in range(2)]
    word = "texture" if texture else "profile"
    return (f"Put all objects with the same {word} as {{base_obj}} into it.",
            {"base_obj": b.ref()},
            [act(far(rng), far(rng), turn(rng), n) for n in names])


def _sweep(rng: Rng, verb: str) -> Built:
    q = str(rng.choice(("one", "two", "three", "all", "any")))
    swept = placeholder(rng, f"{tex(rng)} small block")
    bounds = placeholder(rng, f"{tex(rng)} three-sided rectangle")
    line = placeholder(rng, f"{tex(rng)} line")
    n = {"one": 1, "two": 2}.get(q, 3)
    # the bounds stay at the placeholder pose: the stop point is within pixels of its box
    steps = [act(far(rng), jitter(rng, (bounds.cx / W, bounds.cy / H), 3), 0, swept.name,
                 "spatula") for _ in range(n)]
    return (f"Sweep {q} {{swept_obj}} into {{bounds}} without {verb} {{constraint}}.",
            {"swept_obj": swept.ref(), "bounds": bounds.ref(), "constraint": line.ref()},
            steps)


@dataclass(frozen=True)
class Task:
    weight: int  # episodes in LLaRA's released evaluation (20 seeds per task and partition)
    build: Callable[[Rng], Built]


TASKS: dict[str, Task] = {
    "visual_manipulation": Task(60, visual_manipulation),
    "rotate": Task(60, rotate),
    "scene_understanding": Task(60, scene_understanding),
    "twist": Task(60, twist),
    "novel_adj": Task(60, lambda r: _novel(r, nouns=False, adjective=True)),
    "novel_noun": Task(60, lambda r: _novel(r, nouns=True, adjective=False)),
    "novel_adj_and_noun": Task(20, lambda r: _novel(r, nouns=True, adjective=True)),
    "follow_order": Task(60, follow_order),
    "follow_motion": Task(20, follow_motion),
    "rearrange": Task(60, lambda r: _rearrange(r, restore=False)),
    "rearrange_then_restore": Task(60, lambda r: _rearrange(r, restore=True)),
    "manipulate_old_neighbor": Task(60, manipulate_old_neighbor),
    "pick_in_order_then_restore": Task(60, pick_in_order_then_restore),
    "same_shape": Task(60, lambda r: _same(r, texture=False)),
    "same_texture": Task(20, lambda r: _same(r, texture=True)),
    "sweep_without_exceeding": Task(40, lambda r: _sweep(r, "exceeding")),
    "sweep_without_touching": Task(20, lambda r: _sweep(r, "touching")),
}
