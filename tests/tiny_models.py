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


def random_llava_hf(tok_dir, where, n_vocab: int, llm_hidden: int = 64, max_positions: int = 256):
    """A randomly initialised llava-hf `LlavaForConditionalGeneration` (CLIP 3 x 64 at 56 px,
    patch 14 -> 16 image tokens; LLaMA 2 layers, image token id = n_vocab) saved to `where`
    with the tokenizer of `tok_dir` (its tokenizer.model copied; without one, its fast
    tokenizer saved by transformers' save_pretrained, tokenizer.json only); returns `where`.
    Seeded: the same call, the same model."""
    import shutil
    from pathlib import Path

    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                              num_attention_heads=2, image_size=56, patch_size=14,
                              projection_dim=64)
    text = LlamaConfig(vocab_size=n_vocab + 2, hidden_size=llm_hidden,
                       intermediate_size=2 * llm_hidden, num_hidden_layers=2,
                       num_attention_heads=4, max_position_embeddings=max_positions)
    model = LlavaForConditionalGeneration(LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=n_vocab, image_seq_length=16))
    model.save_pretrained(where)
    if (Path(tok_dir) / "tokenizer.model").is_file():
        shutil.copy(f"{tok_dir}/tokenizer.model", f"{where}/tokenizer.model")
    else:
        from transformers import LlamaTokenizerFast

        LlamaTokenizerFast.from_pretrained(tok_dir).save_pretrained(where)
    return where
