"""Conversation templates and image tags against literal strings from LLaVA's sources.

Expected texts are copied from haotian-liu/LLaVA llava/conversation.py (conv_vicuna_v1,
conv_llava_v1) and what Conversation.get_prompt() builds from them.
"""

import pytest

from llara_edge.errors import ConfigError
from llara_edge.formats import (
    IMAGE_TOKEN,
    LLAVA_V1,
    VICUNA_V1,
    build_prompt,
    get_template,
    image_tag,
    split_image_tags,
)

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions."
)
LLAVA_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the human's questions."
)


def test_system_strings_roles_and_separators():
    assert VICUNA_V1.system == VICUNA_SYSTEM
    assert LLAVA_V1.system == LLAVA_SYSTEM
    for tpl in (VICUNA_V1, LLAVA_V1):
        assert tpl.roles == ("USER", "ASSISTANT")
        assert (tpl.sep, tpl.sep2) == (" ", "</s>")
    assert get_template("v1") is VICUNA_V1  # LLaVA's conv_templates["v1"] (LLaRA's eval)
    assert get_template("llava_v1") is LLAVA_V1


def test_full_single_turn_prompt_literal():
    user = "<image>\nWhat is in the image?"
    expected = (
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions. USER: <image>\n"
        "What is in the image? ASSISTANT:"
    )
    assert build_prompt("vicuna_v1", user) == expected
    assert build_prompt(LLAVA_V1, user) == (
        LLAVA_SYSTEM + " USER: <image>\nWhat is in the image? ASSISTANT:"
    )


def test_prompt_with_answer_ends_with_eos_text():
    got = build_prompt("vicuna_v1", "<image>\nQ", "Step 1: A.")
    assert got == VICUNA_SYSTEM + " USER: <image>\nQ ASSISTANT: Step 1: A.</s>"


def test_empty_messages_follow_llava_quirk():
    # get_prompt: `if message:` is false for "" -> bare "ROLE:" and no separator after it.
    assert build_prompt("vicuna_v1", "") == VICUNA_SYSTEM + " USER:ASSISTANT:"
    assert build_prompt("vicuna_v1", "Q", "") == VICUNA_SYSTEM + " USER: Q ASSISTANT:"


def test_prefix_and_suffix_compose_the_prompt():
    user = "<image0>\n<task>x</task>"
    assert VICUNA_V1.prefix + user + VICUNA_V1.suffix == build_prompt(VICUNA_V1, user)


def test_unknown_template_is_config_error():
    with pytest.raises(ConfigError):
        build_prompt("chatml", "hi")


def test_image_tags():
    assert IMAGE_TOKEN == "<image>"
    assert image_tag() == "<image>"
    assert image_tag(0) == "<image0>"
    assert image_tag(12) == "<image12>"
    with pytest.raises(ConfigError):
        image_tag(-1)


def test_split_image_tags_as_llara_tokenizer():
    prompt = "<image0>\n<task>Put <image1>the block</task> <image> end"
    assert split_image_tags(prompt) == [0, "\n<task>Put ", 1, "the block</task> ", 0, " end"]
    assert split_image_tags("no image") == ["no image"]
    with pytest.raises(ConfigError):
        split_image_tags("<image12345>")
