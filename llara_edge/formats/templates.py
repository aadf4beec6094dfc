"""LLaVA conversation templates and image tags, reproduced byte for byte.

Contract: `build_prompt(template, user_text, answer=None)` returns exactly what LLaVA's
`Conversation.get_prompt()` returns for a `SeparatorStyle.TWO` template after
`append_message(USER, user_text)` and `append_message(ASSISTANT, answer)`:

    system + " " + "USER: " + user_text + " " + "ASSISTANT:"                (answer None)
    system + " " + "USER: " + user_text + " " + "ASSISTANT: " + answer + "</s>"  (training)

LLaVA treats an empty message like a missing one ("USER:" with no separator after it); that
quirk is kept. The image stays a text tag inside the user text: `<image>` (stock LLaVA,
LLARVA) or `<image0>`, `<image1>`, ... (LLaRA); `split_image_tags` cuts a prompt where the
embeddings of image i go. Tokenised, each tag is one IMAGE_TOKEN_INDEX (-200).

Sources: haotian-liu/LLaVA `llava/conversation.py` (conv_vicuna_v1, conv_llava_v1,
Conversation.get_prompt) and `llava/constants.py` (DEFAULT_IMAGE_TOKEN); LostXine/LLaRA
`train-llava/llava/mm_utils.py` (tokenizer_image_token, pattern `<image\\d*?>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llara_edge.errors import ConfigError


@dataclass(frozen=True)
class ConvTemplate:
    """One LLaVA `Conversation` of separator style TWO (all that LLaRA / LLARVA use)."""

    name: str
    system: str
    roles: tuple[str, str] = ("USER", "ASSISTANT")
    sep: str = " "
    sep2: str = "</s>"

    def __post_init__(self) -> None:
        if len(self.roles) != 2 or not all(self.roles):
            raise ConfigError(f"template {self.name!r} needs two roles, got {self.roles!r}")

    @property
    def prefix(self) -> str:
        """Text before a non-empty user message: constant across steps (KV-cache reusable)."""
        return self.system + self.sep + self.roles[0] + ": "

    @property
    def suffix(self) -> str:
        """Text after a non-empty user message when the assistant is to answer."""
        return self.sep + self.roles[1] + ":"


# llava/conversation.py, `conv_vicuna_v1` (LLaRA trains and evaluates with it; LLARVA
# trains with it: scripts/v1_5/*.sh `--version v1`).
VICUNA_V1 = ConvTemplate(
    name="vicuna_v1",
    system="A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
)

# llava/conversation.py, `conv_llava_v1` (LLARVA's RLBench agent evaluates with it:
# sim/agents/llarva_bc/llarva_agent.py, conv_mode = 'llava_v1').
LLAVA_V1 = ConvTemplate(
    name="llava_v1",
    system="A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.",
)

# Names as in LLaVA's `conv_templates` ("v1" is an alias of vicuna_v1 there too).
TEMPLATES: dict[str, ConvTemplate] = {
    "vicuna_v1": VICUNA_V1,
    "v1": VICUNA_V1,
    "llava_v1": LLAVA_V1,
}


def get_template(template: str | ConvTemplate) -> ConvTemplate:
    """The template itself, or the one registered under that name."""
    if isinstance(template, ConvTemplate):
        return template
    try:
        return TEMPLATES[template]
    except KeyError as err:
        raise ConfigError(
            f"unknown conversation template {template!r}; known: {sorted(TEMPLATES)}"
        ) from err


def build_prompt(
    template: str | ConvTemplate, user_text: str, answer: str | None = None
) -> str:
    """Single-turn prompt exactly as LLaVA's get_prompt (style TWO) writes it."""
    tpl = get_template(template)
    seps = (tpl.sep, tpl.sep2)
    ret = tpl.system + seps[0]
    for i, (role, message) in enumerate(zip(tpl.roles, (user_text, answer), strict=True)):
        # `if message:` in LLaVA: None and "" both give the bare role and no separator.
        ret += f"{role}: {message}{seps[i % 2]}" if message else f"{role}:"
    return ret


# llava/constants.py DEFAULT_IMAGE_TOKEN.
IMAGE_TOKEN = "<image>"
# llava/constants.py IMAGE_TOKEN_INDEX: the id that stands for one image in LLaVA prompt ids
# (tokenizer_image_token), replaced by that image's embeddings before the LLM sees them.
IMAGE_TOKEN_INDEX = -200
# LLaRA train-llava/llava/mm_utils.py tokenizer_image_token: `<image>` and `<imageN>`.
IMAGE_TAG_RE = re.compile(r"<image\d*?>")


def image_token_ids(encode, prompt: str, bos_id: int | None) -> list[int]:
    """LLaVA's tokenizer_image_token over `encode` (text -> ids, no BOS): [BOS] chunk0 -200
    chunk1 -200 ... chunkN, each chunk between LLaRA's `<image\\d*?>` tags encoded on its own
    (so each gets its own dummy prefix, as LLaVA's code does); bos_id None: no BOS. Every
    tokenizer of the project (the runtime's GGUF one, the export's) builds prompts with it."""
    ids = [] if bos_id is None else [bos_id]
    for i, chunk in enumerate(IMAGE_TAG_RE.split(prompt)):
        if i:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(encode(chunk))
    return ids
# What `image_tag` accepts as a whole (used to validate configs).
_IMAGE_TAG_FULL = re.compile(r"<image(?:0|[1-9]\d{0,2})?>")


def image_tag(index: int | None = None) -> str:
    """`<image>` (index None, stock LLaVA) or LLaRA's numbered `<image{index}>`."""
    if index is None:
        return IMAGE_TOKEN
    if not isinstance(index, int) or not 0 <= index <= 999:
        raise ConfigError(f"image index must be an int in 0..999, got {index!r}")
    return f"<image{index}>"


def check_image_tag(tag: str) -> str:
    """Return `tag` if it is `<image>` or `<imageN>`, else raise ConfigError."""
    if not isinstance(tag, str) or not _IMAGE_TAG_FULL.fullmatch(tag):
        raise ConfigError(f"image tag must be '<image>' or '<imageN>', got {tag!r}")
    return tag


def split_image_tags(prompt: str) -> list[str | int]:
    """Cut `prompt` at image tags: text pieces (str) and image indices (int), in order.

    As LLaRA's tokenizer_image_token: `<image>` and `<image0>` both mean image 0,
    `<imageN>` image N. Empty text pieces are dropped.
    """
    parts: list[str | int] = []
    pos = 0
    for m in IMAGE_TAG_RE.finditer(prompt):
        if m.start() > pos:
            parts.append(prompt[pos : m.start()])
        digits = m.group(0)[6:-1]
        if len(digits) > 3:
            raise ConfigError(f"image tag index too long: {m.group(0)[:20]!r}")
        parts.append(int(digits) if digits else 0)
        pos = m.end()
    if pos < len(prompt):
        parts.append(prompt[pos:])
    return parts


def one_image_prompt(template: str | ConvTemplate, user_text: str) -> str:
    """The prompt of a one-frame policy: `<image>\n` put in front of a text without an image
    tag (LLaRA's evaluation), ConfigError for a text with several."""
    n_images = sum(isinstance(p, int) for p in split_image_tags(user_text))
    if n_images == 0:
        user_text = IMAGE_TOKEN + "\n" + user_text
    elif n_images > 1:
        raise ConfigError(f"the policy takes one frame, the text has {n_images} image tags")
    return build_prompt(template, user_text)
