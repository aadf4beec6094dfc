"""Shared text of the tiny random checkpoints that tests build (backend and export tests)."""

from llara_edge.actions import PickPlaceAction
from llara_edge.formats import VICUNA_V1, LlaraPrompt, build_prompt, format_answer

PROMPT = LlaraPrompt(
    "Put the red block into the green pan.",
    {"red block": (0.312, 0.617, 0.070, 0.094), "green pan": (0.742, 0.547, 0.195, 0.203)},
)


def llara_conversations(n: int = 150) -> list[str]:
    """`n` vicuna_v1 conversations of PROMPT with varied D-inBC answers: a tokenizer corpus
    that covers digits, tags and the template."""
    texts = []
    for i in range(n):
        a = PickPlaceAction((i % 97 / 97, i % 89 / 89), (i % 83 / 83, 0.5), i % 360 - 180,
                            object_name="red block")
        texts.append(build_prompt(VICUNA_V1, PROMPT.render(), format_answer([a])))
    return texts
