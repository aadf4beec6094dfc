"""Text formats of the LLaRA and LLARVA policies: templates, prompts, answers, parsers, and
the policy-format objects that bundle them (one registered `PolicyFormat` per format,
formats.base: `policy_format("llara")`, `policy_format("llarva", n_joints)`).

Everything here reproduces the original projects byte for byte (sources are cited in each
module); parsers are strict and raise only `llara_edge.errors.ParseError` on bad text.
"""

from llara_edge.formats.base import (
    N_ARM_JOINTS,
    POLICY_FORMATS,
    PolicyFormat,
    PromptInput,
    format_for_grammar,
    policy_format,
)
from llara_edge.formats.llara import (
    FORMAT_PROMPTS,
    BBox,
    detection_answer,
    detection_prompt,
    format_action,
    format_answer,
    format_bbox,
    format_history,
    format_object,
    format_scene,
    localization_answer,
    localization_prompt,
    next_step_number,
)
from llara_edge.formats.llarva import (
    LlarvaPrompt,
    ProprioHistory,
    format_llarva_answer,
    parse_llarva_answer,
    parse_llarva_like_source,
)
from llara_edge.formats.paraphrases import ACTION_PROMPTS, DETECTION_PROMPTS, LOCALIZATION_PROMPTS
from llara_edge.formats.parse import (
    parse_detection,
    parse_llara_answer,
    parse_llara_first_step,
    parse_llara_like_eval,
    parse_localization,
)
from llara_edge.formats.prompt import (
    LlaraPrompt,
    ObjectRef,
    SceneRef,
    build_task_text,
    fill_placeholders,
)
from llara_edge.formats.templates import (
    IMAGE_TOKEN,
    IMAGE_TOKEN_INDEX,
    LLAVA_V1,
    TEMPLATES,
    VICUNA_V1,
    ConvTemplate,
    build_prompt,
    get_template,
    image_tag,
    one_image_prompt,
    split_image_tags,
)

__all__ = [
    "ACTION_PROMPTS",
    "DETECTION_PROMPTS",
    "FORMAT_PROMPTS",
    "IMAGE_TOKEN",
    "IMAGE_TOKEN_INDEX",
    "LLAVA_V1",
    "LOCALIZATION_PROMPTS",
    "N_ARM_JOINTS",
    "POLICY_FORMATS",
    "TEMPLATES",
    "VICUNA_V1",
    "BBox",
    "ConvTemplate",
    "LlaraPrompt",
    "LlarvaPrompt",
    "ObjectRef",
    "PolicyFormat",
    "PromptInput",
    "ProprioHistory",
    "SceneRef",
    "build_prompt",
    "build_task_text",
    "detection_answer",
    "detection_prompt",
    "fill_placeholders",
    "format_action",
    "format_answer",
    "format_bbox",
    "format_for_grammar",
    "format_history",
    "format_llarva_answer",
    "format_object",
    "format_scene",
    "get_template",
    "image_tag",
    "localization_answer",
    "localization_prompt",
    "next_step_number",
    "one_image_prompt",
    "parse_detection",
    "parse_llara_answer",
    "parse_llara_first_step",
    "parse_llara_like_eval",
    "parse_llarva_answer",
    "parse_llarva_like_source",
    "parse_localization",
    "policy_format",
    "split_image_tags",
]
