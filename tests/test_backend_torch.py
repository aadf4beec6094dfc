"""Torch reference backend: LLaVA tokenisation, KV-cache primitives, and the policy glue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import PROMPT, llara_conversations

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats import (
    VICUNA_V1,
    LlarvaPrompt,
    ProprioHistory,
    build_prompt,
    format_answer,
    format_llarva_answer,
)
from llara_export.models.checkpoint import save_original
from llara_export.models.llava import IMAGE_TOKEN_INDEX, TinyConfig, build_tiny
from llara_export.models.tokenizer import SpmTokenizer, train_spm
from llara_export.torch_ref import PolicyConfig, TorchPolicy

TINY = TinyConfig(vocab_size=400, image_size=56, vision_layers=2, max_positions=1024)
ACTION = PickPlaceAction((0.312, 0.617), (0.742, 0.547), -45, object_name="red block")
FRAME = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    texts = [text for i, conv in enumerate(llara_conversations(150))
             for text in (conv, f"The next action step: [{i / 7:.4f}, -{i / 3:.4f}, 1] é ü")]
    out = tmp_path_factory.mktemp("tok")
    train_spm(texts, out, vocab_size=TINY.vocab_size)
    return out


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tok_dir) -> Path:
    return save_original(build_tiny(TINY, seed=4), tok_dir, tmp_path_factory.mktemp("c") / "ck")


@pytest.fixture(scope="module")
def policy(ckpt) -> TorchPolicy:
    return TorchPolicy.load(ckpt, PolicyConfig(max_new_tokens=24))


def _llava_tokenizer_image_token(prompt, tokenizer, image_token_index=IMAGE_TOKEN_INDEX):
    """haotian-liu/LLaVA llava/mm_utils.py tokenizer_image_token, verbatim logic."""
    prompt_chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]

    def insert_separator(x, sep):
        return [ele for sublist in zip(x, [sep] * len(x), strict=False) for ele in sublist][:-1]

    input_ids = []
    offset = 0
    if prompt_chunks and prompt_chunks[0] and prompt_chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        input_ids.append(prompt_chunks[0][0])
    for x in insert_separator(prompt_chunks, [image_token_index] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


@pytest.mark.parametrize("legacy", [True, False])
def test_tokenizer_image_token_matches_llava_with_hf_tokenizer(tok_dir, tmp_path, legacy):
    """transformers' LlamaTokenizer (built from the same tokenizer.model) is the reference.

    LLaVA loads the slow sentencepiece tokenizer (use_fast=False), which always prepends the
    dummy "▁"; the tokenizers-based LlamaTokenizer of transformers 5 skips it when a chunk
    already starts with a space. LLaVA prompts put "\n" after an image tag, so real chunks
    never start with a space; such a chunk is checked against sentencepiece semantics below.
    """
    from transformers import LlamaTokenizer

    (tmp_path / "tokenizer.model").write_bytes((tok_dir / "tokenizer.model").read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "legacy": legacy, "add_bos_token": True,
        "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    hf = LlamaTokenizer.from_pretrained(tmp_path)
    ours = SpmTokenizer.from_dir(tmp_path)
    prompts = [
        build_prompt(VICUNA_V1, PROMPT.render()),
        build_prompt(VICUNA_V1, "Say 0.123  twice é" + "<image>" + "\nand <image>\nagain"),
        "<image>",
    ]
    for prompt in prompts:
        assert ours.tokenizer_image_token(prompt) == _llava_tokenizer_image_token(prompt, hf)
    assert [ours.id_to_piece(i) for i in ours.encode(" and")][:2] == ["▁", "▁and"]
    answer = format_answer([ACTION], first_point_spaces=2)
    assert ours.decode([*ours.encode(answer), ours.eos_id]) == answer
    assert hf.decode(ours.encode(answer), skip_special_tokens=True) == answer


def test_image_tags_and_decode_skips_special_and_added_ids(tok_dir):
    tok = SpmTokenizer.from_dir(tok_dir)
    ids = tok.tokenizer_image_token("a <image0> b <image1>")
    assert ids[0] == tok.bos_id and ids.count(IMAGE_TOKEN_INDEX) == 2
    text = tok.decode([tok.bos_id, *tok.encode("Step 1"), tok.eos_id, tok.vocab_size, 0])
    assert text == "Step 1"


def test_prefill_extend_and_rollback_reproduce_generate_greedy(policy):
    backend = policy.backend
    ids = policy.prompt_ids(PROMPT.render())
    cut = ids.index(IMAGE_TOKEN_INDEX)
    expected = backend.model.generate_greedy(
        torch.tensor([ids]), backend.pixel_values(FRAME), max_new_tokens=12, eos_token_id=None
    )
    backend.reset()
    logits = backend.prefill([ids[:cut], backend.encode_image(FRAME), ids[cut + 1 :]])
    n_prompt = len(ids) - 1 + backend.model.num_image_tokens
    assert backend.n_past == n_prompt
    tokens = [int(logits.argmax())]
    for _ in range(11):
        tokens.append(int(backend.extend([tokens[-1]])[-1].argmax()))
    assert tokens == expected
    # roll back 5 positions and feed the same tokens at once: same logits as step by step
    before = backend.extend([tokens[-1]])
    backend.rollback(6)
    again = backend.extend(tokens[-6:])
    assert backend.n_past == n_prompt + 12
    assert torch.allclose(again[-1], before[-1], atol=1e-5)
    with pytest.raises(ConfigError, match="roll back"):
        backend.rollback(backend.n_past + 1)


def test_untrained_policy_answer_raises_typed_parse_error(policy):
    with pytest.raises(ParseError) as err:
        policy.act(FRAME, PROMPT.render())
    assert err.value.reason in {"malformed", "truncated", "empty", "bad_number", "bad_name"}
    llarva = TorchPolicy(policy.backend, PolicyConfig(policy_format="llarva", max_new_tokens=8))
    with pytest.raises(ParseError):
        llarva.act(FRAME, "the task")


def _scripted(policy: TorchPolicy, answer: str, monkeypatch) -> None:
    """Make the model 'say' `answer`: tests the decode + parse glue, not the model."""
    tok = policy.backend.tokenizer
    seen = {}

    def fake_generate(input_ids, pixel_values, max_new_tokens, eos_token_id, margins=None):
        seen.update(ids=input_ids[0].tolist(), shape=tuple(pixel_values.shape), eos=eos_token_id)
        return [*tok.encode(answer), eos_token_id]

    monkeypatch.setattr(policy.backend.model, "generate_greedy", fake_generate)
    return seen


def test_policy_act_returns_text_and_typed_action(policy, monkeypatch):
    answer = format_answer([ACTION], first_point_spaces=2)  # as released LLaRA models write
    seen = _scripted(policy, answer, monkeypatch)
    result = policy.act(FRAME, PROMPT.render())
    assert result.text == answer and result.action == ACTION
    assert result.token_ids[-1] == policy.backend.tokenizer.eos_id
    assert seen["shape"] == (1, 3, 56, 56) and seen["eos"] == 2
    assert seen["ids"] == list(result.prompt_ids) == policy.prompt_ids(PROMPT.render())


def test_llarva_policy(policy, monkeypatch):
    action = JointStepAction((0.1, -0.2, 0.3, 0.0, 1.5, -1.25, 0.7), gripper=0.0)
    _scripted(policy, format_llarva_answer(action, 7), monkeypatch)
    llarva = TorchPolicy(policy.backend, PolicyConfig(policy_format="llarva", template="llava_v1"))
    user = LlarvaPrompt(task="sweep dirt to the dustpan").render(ProprioHistory(7))
    result = llarva.act(FRAME, user)
    assert result.action == action
    assert llarva.prompt(user).startswith("A chat between a curious human")


def test_prompt_adds_missing_image_tag_and_rejects_two(policy):
    assert policy.prompt("pick it").endswith("USER: <image>\npick it ASSISTANT:")
    assert policy.prompt("<image0>\npick it").endswith("USER: <image0>\npick it ASSISTANT:")
    with pytest.raises(ConfigError, match="2 image tags"):
        policy.prompt("<image0> and <image1>")
    with pytest.raises(ConfigError, match="policy format"):
        PolicyConfig(policy_format="rt2")
    with pytest.raises(ConfigError, match="max_new_tokens"):
        PolicyConfig(max_new_tokens=0)
