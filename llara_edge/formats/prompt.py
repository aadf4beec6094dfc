"""LLaRA's user prompt: the task text with its objects inlined, then the fixed lines.

Contract:
    LlaraPrompt(instruction, objects=(), describe=True, paraphrase=None, tool="suction",
                image_tag="<image>", history_first_point_spaces=1, assets={},
                variant="standard")
    prompt.task_text() -> str        # what goes between <task> and </task>
    prompt.render(history=()) -> str # the whole user text (FORMATS.md §2)

Two ways to say where the objects are, both byte for byte as LLaRA writes them:
- plain words: `objects` is an ordered sequence of mentions (name, bbox or None) or a mapping
  name -> bbox. Every name must occur in the instruction as whole words (longest name first);
  the i-th occurrence of a name takes the i-th mention of that name, so "X is kobar than X"
  with two mentions of X gets two boxes. A name with one mention fills all its occurrences;
  a name with several mentions needs exactly as many occurrences.
- VIMA placeholders: the instruction keeps VIMA's `{key}` placeholders (the prompt template
  of a VIMA task, "Put the {dragged_texture} object in {scene} into the {base_texture}
  object.") and `assets` maps each key to an ObjectRef or a SceneRef, filled as LLaRA's
  eval/vima_utils.py prepare_prompt does in its oracle mode 'o' (describe=True) and in its
  plain mode (describe=False): an object becomes `<p>name</p> at <b>(cx, cy), {w, h}</b>`
  (plain: `<p>name</p>`); a scene becomes `<scene><p>a</p> at <b>...</b>.\\n<p>b</p> at
  <b>...</b>.</scene>` (plain: `<scene>{key}</scene>`, the key's own word). Every occurrence
  of a key gets the same text (prepare_prompt's str.replace); multi-image mode 'v' is not
  supported (the runtime feeds one image).
An instruction may also hold scene blocks already written (`<scene>...</scene>` with one
valid `<p>name</p> at <b>...</b>.` line per object, as in a LLaRA data set's task text):
they are kept as they are, checked, and names are matched only outside them. Anything else
with '<', '>' or a newline is refused (ConfigError).
`variant` (formats.llara.PROMPT_VARIANTS) says how a scene block ends: "standard"
`...</b>.</scene>`, "scene_no_final_period" `...</b></scene>` (its last line without the
"."); the scenes it writes and the written blocks it accepts follow it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from llara_edge.actions import Tool
from llara_edge.errors import ConfigError
from llara_edge.formats.llara import (
    FORMAT_PROMPTS,
    NAME_PATTERN,
    BBox,
    _check_spaces,
    check_bbox,
    check_name,
    check_prompt_variant,
    format_history,
    format_object,
    format_scene,
    pick_table,
)
from llara_edge.formats.paraphrases import ACTION_PROMPTS
from llara_edge.formats.templates import IMAGE_TOKEN, check_image_tag

Mention = tuple[str, BBox | None]
_NUM = r"(?:0\.\d{3}|1\.000)"
_SCENE_OBJECT = rf"<p>{NAME_PATTERN}</p> at <b>\({_NUM}, {_NUM}\), \{{{_NUM}, {_NUM}\}}</b>"
# a written scene block per prompt variant: every line with its "." / the last one without
_SCENE_RES = {
    "standard": re.compile(rf"<scene>{_SCENE_OBJECT}\.(?:\n{_SCENE_OBJECT}\.)*</scene>"),
    "scene_no_final_period": re.compile(rf"<scene>(?:{_SCENE_OBJECT}\.\n)*{_SCENE_OBJECT}"
                                        "</scene>"),
}
_SCENE_SPLIT = re.compile(r"(<scene>.*?</scene>)", re.S)
_PLACEHOLDER = re.compile(r"\{.+?\}")  # prepare_prompt's re.findall(r'\{.+?\}', p)


@dataclass(frozen=True)
class ObjectRef:
    """One object a VIMA placeholder stands for: its name and box (cx, cy, w, h)."""

    name: str
    bbox: BBox | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.bbox is not None:
            object.__setattr__(self, "bbox", check_bbox(self.bbox))


@dataclass(frozen=True)
class SceneRef:
    """A scene image a VIMA placeholder stands for: its objects, in the detector's order."""

    objects: tuple[tuple[str, BBox], ...]

    def __post_init__(self) -> None:
        objs = tuple((check_name(n), check_bbox(b)) for n, b in self.objects)
        if not objs:
            raise ConfigError("a scene needs at least one object")
        object.__setattr__(self, "objects", objs)


def normalise_mentions(objects: Mapping[str, BBox | None] | Sequence[Mention]) -> tuple:
    """Ordered (name, bbox or None) mentions from a mapping or a sequence of pairs."""
    pairs = list(objects.items()) if isinstance(objects, Mapping) else list(objects)
    out = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ConfigError(f"an object mention is (name, bbox or None), got {pair!r}")
        name, bbox = pair
        out.append((check_name(name), None if bbox is None else check_bbox(bbox)))
    return tuple(out)


def _segments(instruction: str, variant: str = "standard") -> list[tuple[str, bool]]:
    """(text, is_scene_block) pieces; plain pieces must hold no '<', '>' or newline, scene
    blocks are those of prompt variant `variant`."""
    if not isinstance(instruction, str) or not instruction:
        raise ConfigError(f"instruction must be a non-empty string, got {instruction!r}")
    out = []
    for piece in _SCENE_SPLIT.split(instruction):
        scene = piece.startswith("<scene>")
        if scene and not _SCENE_RES[variant].fullmatch(piece):
            other = [v for v, pattern in _SCENE_RES.items() if pattern.fullmatch(piece)]
            hint = f" (it is written as prompt variant {other[0]!r})" if other else ""
            raise ConfigError(f"malformed scene block for prompt variant {variant!r} in the "
                              f"instruction{hint}: {piece!r}")
        if not scene and re.search(r"[<>\n]", piece):
            raise ConfigError("instruction must be one line without '<' or '>' outside "
                              f"<scene>...</scene> blocks: {instruction!r}")
        if piece:
            out.append((piece, scene))
    return out


def inline_mentions(instruction: str, mentions: Sequence[Mention], describe: bool,
                    variant: str = "standard") -> str:
    """Replace each name occurrence with `<p>name</p>` (+ its box if `describe`)."""
    segments = _segments(instruction, variant)
    if not mentions:
        return instruction
    by_name: dict[str, list[BBox | None]] = {}
    for name, bbox in mentions:
        if describe and bbox is None:
            raise ConfigError(f"D-inBC needs a bbox for {name!r}")
        by_name.setdefault(name, []).append(bbox)
    names = sorted(by_name, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, names)) + r")(?!\w)")
    found = [m for text, scene in segments if not scene for m in pattern.findall(text)]
    for name, boxes in by_name.items():
        n = found.count(name)
        if n == 0:
            raise ConfigError(f"object name {name!r} not found in the instruction")
        if len(boxes) > 1 and n != len(boxes):
            raise ConfigError(f"{name!r} has {len(boxes)} mentions but occurs {n} times")
    seen: dict[str, int] = {}

    def fill(m: re.Match) -> str:
        name = m.group(0)
        boxes, i = by_name[name], seen.get(name, 0)
        seen[name] = i + 1
        return format_object(name, boxes[min(i, len(boxes) - 1)] if describe else None)

    return "".join(text if scene else pattern.sub(fill, text) for text, scene in segments)


def placeholders(instruction: str, variant: str = "standard") -> list[str]:
    """VIMA placeholder keys in order of appearance, outside written scene blocks."""
    return [ref[1:-1] for text, scene in _segments(instruction, variant) if not scene
            for ref in _PLACEHOLDER.findall(text)]


def _asset_text(key: str, asset: ObjectRef | SceneRef, describe: bool, variant: str) -> str:
    if isinstance(asset, SceneRef):
        return format_scene(asset.objects, variant) if describe else f"<scene>{key}</scene>"
    if not isinstance(asset, ObjectRef):
        raise ConfigError(f"asset {key!r} must be an ObjectRef or a SceneRef, got {asset!r}")
    if describe and asset.bbox is None:
        raise ConfigError(f"D-inBC needs a bbox for asset {key!r}")
    return format_object(asset.name, asset.bbox if describe else None)


def fill_placeholders(template: str, assets: Mapping[str, ObjectRef | SceneRef],
                      describe: bool, text: str | None = None,
                      variant: str = "standard") -> str:
    """VIMA `{key}` placeholders of `template` -> object / scene text, in order of
    appearance, replaced in `text` (default: the template itself; the prompt passes the
    template with its plain mentions already inlined, whose boxes hold braces too); scenes
    are written as prompt variant `variant` closes them."""
    keys = placeholders(template, variant)
    missing = sorted({k for k in keys if k not in assets})
    if missing:
        raise ConfigError(f"no asset for placeholders {missing}")
    unused = sorted(set(assets) - set(keys))
    if unused:
        raise ConfigError(f"assets not in the instruction: {unused}")
    text = template if text is None else text
    for key in dict.fromkeys(keys):
        text = text.replace("{" + key + "}", _asset_text(key, assets[key], describe, variant))
    return text


@dataclass(frozen=True)
class LlaraPrompt:
    """A LLaRA behaviour-cloning user prompt (D-inBC when `describe`, else inBC).

    `objects`: ordered mentions (name, bbox) or a mapping name -> bbox (module contract);
    `assets`: VIMA placeholders -> ObjectRef / SceneRef. `paraphrase` is an index into
    ACTION_PROMPTS or None for no instruction line (the training notebook writes none;
    LLaRA's eval picks one, `--prompt-id`). `history_first_point_spaces` is the spacing of
    past steps in the history (LLaRA's current eval code writes 1; the runs behind its
    published results wrote 2). `variant`: how scene blocks end (module docstring).
    """

    instruction: str
    objects: Mapping[str, BBox | None] | Sequence[Mention] = ()
    describe: bool = True
    paraphrase: int | None = None
    tool: Tool = "suction"
    image_tag: str = IMAGE_TOKEN
    history_first_point_spaces: int = 1
    assets: Mapping[str, ObjectRef | SceneRef] = field(default_factory=dict)
    variant: str = "standard"

    def __post_init__(self) -> None:
        check_prompt_variant(self.variant)
        object.__setattr__(self, "objects", normalise_mentions(self.objects))
        object.__setattr__(self, "assets", dict(self.assets))
        if self.tool not in FORMAT_PROMPTS:
            raise ConfigError(f"tool must be one of {sorted(FORMAT_PROMPTS)}, got {self.tool!r}")
        if self.paraphrase is not None:
            pick_table(ACTION_PROMPTS, self.paraphrase, "paraphrase")
        check_image_tag(self.image_tag)
        _check_spaces(self.history_first_point_spaces)
        self.task_text()  # validates names, boxes and the instruction now, not at render time

    def task_text(self) -> str:
        """The instruction with objects inlined (the part between <task> and </task>)."""
        text = inline_mentions(self.instruction, self.objects, self.describe, self.variant)
        if self.assets or placeholders(self.instruction, self.variant):
            text = fill_placeholders(self.instruction, self.assets, self.describe, text,
                                     self.variant)
        return text

    def render(self, history: Sequence = ()) -> str:
        """The full user text; `history` holds the steps already executed, oldest first."""
        lines = [self.image_tag, f"<task>{self.task_text()}</task>"]
        if self.paraphrase is not None:
            lines.append(ACTION_PROMPTS[self.paraphrase])
        lines.append(FORMAT_PROMPTS[self.tool])
        return "\n".join(lines) + format_history(history, self.history_first_point_spaces)


def build_task_text(instruction: str, objects: Mapping[str, BBox | None] | Sequence[Mention],
                    describe: bool = True) -> str:
    """The instruction with its object mentions inlined (plain-words form)."""
    return inline_mentions(instruction, normalise_mentions(objects), describe)
