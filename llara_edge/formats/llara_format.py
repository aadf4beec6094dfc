"""The "llara" policy format: LLaRA's VIMA-style pick and place (FORMATS.md §2).

Prompt: `formats.prompt.LlaraPrompt` (inBC, or D-inBC with the objects' boxes inlined; the
"You have finished: " history of the episode's steps), answer "Step k: Pick up the
<p>name</p> at <b>(x, y)</b>, rotate <r>[r]</r> degrees, and drop it at <b>(x, y)</b>."
(spatula: "Sweep ... stop at ...") with k = 1 + the last step of the prompt's history,
parsed to a PickPlaceAction from its first step. Grammar kinds: "llara" (either tool),
"llara_pick", "llara_sweep"; all three carry the "Step k: " header. Prompt variants
(PromptInput.variant): formats.llara.PROMPT_VARIANTS, how scene blocks end (None:
"standard"). Object names: the prompt's `<p>name</p>` mentions.
"""

from __future__ import annotations

from llara_edge.actions import PickPlaceAction
from llara_edge.formats.base import POLICY_FORMATS, PolicyFormat, PromptInput
from llara_edge.formats.llara import (
    PROMPT_VARIANTS,
    format_answer,
    next_step_number,
    prompt_object_names,
)
from llara_edge.formats.parse import parse_llara_first_step
from llara_edge.formats.prompt import LlaraPrompt

_STEP_GRAMMARS = ("llara", "llara_pick", "llara_sweep")


@POLICY_FORMATS.register("llara")
class LlaraFormat(PolicyFormat):
    """LLaRA: one pick-and-place (or sweep) step per answer, numbered after the history."""

    action_type = PickPlaceAction
    grammar_kind = "llara"
    grammar_kinds = _STEP_GRAMMARS
    step_kinds = _STEP_GRAMMARS
    prompt_variants = PROMPT_VARIANTS

    def step_number(self, user_text: str) -> int:
        return next_step_number(user_text)

    def object_names(self, user_text: str) -> tuple[str, ...]:
        return prompt_object_names(user_text)

    def prompt(self, inp: PromptInput) -> str:
        return LlaraPrompt(inp.instruction, inp.objects, describe=inp.describe,
                           paraphrase=inp.paraphrase, variant=inp.variant or "standard"
                           ).render(list(inp.history))

    def parse(self, text: str) -> PickPlaceAction:
        return parse_llara_first_step(text)

    def answer(self, action: PickPlaceAction, user_text: str) -> str:
        return format_answer([action], first_step=self.step_number(user_text))
