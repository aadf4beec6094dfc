"""The runtime's tokenizer.gguf against the export's tokenizer, on the formats' own texts.

Contract:
    format_texts() -> (prompts, answers)     # what the runtime tokenises, every format
    check_vocab_gguf(tokenizer, gguf_path) -> int
        texts compared; ArtifactError naming the first text whose ids differ

The torch reference (and the parity gate) tokenises with the checkpoint's own tokenizer
(models/tokenizer.tokenizer_from_dir), the runtime with llama.cpp over the exported
vocabulary (llara_edge.models.gguf_tokenizer). Both must give the same ids, or the robot
feeds the model prompts it was never trained on while every parity row still passes. The
export compares them on the formats' prompts (every LLaRA paraphrase with and without object
boxes and history, both tools, detection and localisation questions, every LLARVA variant,
in every conversation template, image tags cut out as LLaVA does) and answers (numbered or
not, one and two spaces before the first point, long VIMA names, detection scenes, LLARVA
joint steps with and without a trace). A tokenizer.json the GGUF cannot reproduce on them is
refused here, before anything is published.
"""

from __future__ import annotations

from pathlib import Path

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ArtifactError
from llara_edge.formats import (
    ACTION_PROMPTS,
    DETECTION_PROMPTS,
    LOCALIZATION_PROMPTS,
    TEMPLATES,
    LlaraPrompt,
    LlarvaPrompt,
    ProprioHistory,
    detection_answer,
    detection_prompt,
    format_answer,
    format_llarva_answer,
    localization_answer,
    localization_prompt,
    one_image_prompt,
)
from llara_edge.formats.llarva import PROMPTS as LLARVA_PROMPTS

# the longest VIMA object name in LLaRA's released data (49 bytes) and shorter ones
NAMES = ("yellow and purple polka dot three-sided rectangle", "red block", "green pan",
         "blue heart-shaped bowl", "letter A")
BOXES = {name: (0.312 + 0.1 * i, 0.617, 0.07, 0.094) for i, name in enumerate(NAMES)}


def _actions() -> list[PickPlaceAction]:
    return [PickPlaceAction(pick=(0.03 * i + 0.012, 0.5 - 0.04 * i), place=(0.745, 0.1 * i),
                            rotation_deg=(-359, 0, 45, 359, -90)[i], tool=tool,
                            object_name=NAMES[i])
            for i, tool in enumerate(("suction", "spatula", "suction", "spatula", "suction"))]


def _user_texts() -> list[str]:
    acts, users = _actions(), []
    for tool in ("suction", "spatula"):
        for para in (None, *range(len(ACTION_PROMPTS))):
            for describe in (True, False):
                prompt = LlaraPrompt(f"Put the {NAMES[0]} into the {NAMES[2]}.",
                                     {NAMES[0]: BOXES[NAMES[0]], NAMES[2]: BOXES[NAMES[2]]},
                                     describe=describe, paraphrase=para, tool=tool)
                users.append(prompt.render(acts[:2] if para else ()))
    users += [detection_prompt(k) for k in range(len(DETECTION_PROMPTS))]
    users += [localization_prompt(NAMES[k % len(NAMES)], k)
              for k in range(len(LOCALIZATION_PROMPTS))]
    history = ProprioHistory(7)
    for row in ([0.1234, -1.5, 0.0, 2.0, -0.0001, 3.1416, 0.5], [0.0] * 7):
        history.push(row)
        users += [LlarvaPrompt(task="open the drawer", variant=v).render(history)
                  for v in LLARVA_PROMPTS]
    return users


def format_texts() -> tuple[list[str], list[str]]:
    """(prompts as the runtime builds them, answers as the policies write them)."""
    prompts = [one_image_prompt(t, user) for t in TEMPLATES for user in _user_texts()]
    acts = _actions()
    answers = [format_answer([a], first_step=k, first_point_spaces=spaces)
               for spaces in (1, 2) for k, a in enumerate(acts, 1)]
    answers += [format_answer(acts, first_step=3), format_answer(acts[:3], numbered=False),
                format_answer(acts[:1], numbered=False, first_point_spaces=2),
                detection_answer(BOXES), localization_answer(NAMES[0], BOXES[NAMES[0]])]
    answers += [format_llarva_answer(JointStepAction(
        joints=(0.5, -1.0123, 0.0, 1.0, 2.25, -0.0, 0.1), gripper=g, trace=trace), 7)
        for g, trace in ((1.0, None), (0.0, ((12, 300), (0, 999))))]
    return prompts, answers


def check_vocab_gguf(tokenizer, gguf_path: str | Path) -> int:
    """Compare the GGUF's ids with `tokenizer`'s on format_texts (module docstring)."""
    from llara_edge.models.gguf_tokenizer import GgufTokenizer

    runtime = GgufTokenizer(gguf_path)
    prompts, answers = format_texts()
    pairs = [(p, tokenizer.tokenizer_image_token, runtime.tokenizer_image_token)
             for p in prompts] + [(a, tokenizer.encode, runtime.encode) for a in answers]
    for text, export_ids, runtime_ids in pairs:
        want, got = export_ids(text), runtime_ids(text)
        if want != got:
            at = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b),
                      min(len(want), len(got)))
            raise ArtifactError(
                f"{Path(gguf_path).name} tokenises a format text unlike the checkpoint's "
                f"tokenizer {getattr(tokenizer, 'model_file', '?')}: first difference at token "
                f"{at} ({want[at:at + 4]} vs {got[at:at + 4]}) of {text[:120]!r}")
    return len(pairs)
