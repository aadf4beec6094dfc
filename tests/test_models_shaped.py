"""7B-shaped checkpoints (export/llara_export/models/shaped.py) at reduced width: the real
vocabulary's
tokenizer.model, both layouts load with the intended shapes, and the export reads them."""

from __future__ import annotations

import pytest
from real_vocab import real_vocab_cases, real_vocab_path
from tiny_models import PROMPT, llara_conversations

from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.formats import VICUNA_V1, LlaraPrompt, build_prompt
from llara_export.models.shaped import ShapedConfig, spm_model_from_gguf, write_shaped
from llara_export.models.tokenizer import SpmTokenizer

# 7B vocabulary and CLIP patching, small widths: a test checkpoint of a few MB
SMALL = ShapedConfig(llm_layers=1, clip_layers=2, hidden=256, intermediate=512, heads=4,
                     vision_hidden=64, vision_intermediate=128, vision_heads=2, image_size=56,
                     dtype="float32")


@pytest.fixture(scope="module")
def real_tok(tmp_path_factory) -> SpmTokenizer:
    out = tmp_path_factory.mktemp("spm") / "tokenizer.model"
    return SpmTokenizer(spm_model_from_gguf(real_vocab_path(), out))


def test_tokenizer_model_matches_llama_cpp_cases(real_tok):
    cases = real_vocab_cases()
    assert real_tok.vocab_size == 32000 and len(cases) > 20
    differ = [text for text, ids in cases if real_tok.encode(text) != ids]
    assert differ == []


def test_tokenizer_model_matches_llama_cpp_on_prompts(real_tok):
    from llara_edge.llama.lib import load_llama_cpp

    llama_cpp = load_llama_cpp()
    llm = llama_cpp.Llama(str(real_vocab_path()), vocab_only=True, verbose=False)
    texts = [build_prompt(VICUNA_V1, PROMPT.render()), *llara_conversations(20),
             LlaraPrompt("Stack the blue cube on the yellow cube.", {}).render()]
    for text in texts:
        # llama.cpp's llama tokenizer adds the same dummy-prefix space as sentencepiece
        ref = llm.tokenize(text.encode(), add_bos=False, special=False)
        assert real_tok.encode(text) == ref, text[:60]


def test_digits_are_single_tokens(real_tok):
    pieces = [real_tok.id_to_piece(i) for i in real_tok.encode("(0.312, 0.617)")]
    assert {"3", "1", "2", "6", "7"} <= set(pieces)
    assert all(len(p.lstrip("▁")) <= 1 for p in pieces if p.lstrip("▁").isdigit())


def test_bad_vocabulary_is_artifact_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(ArtifactError):
        spm_model_from_gguf(bad, tmp_path / "t.model")


def test_config_validation():
    with pytest.raises(ConfigError):
        ShapedConfig(layout="gptq")
    with pytest.raises(ConfigError):
        ShapedConfig(clip_layers=1)
    assert ShapedConfig(layout="llava-hf").embedding_rows == 32064
    seven = ShapedConfig().tiny_config()
    assert (seven.hidden, seven.intermediate, seven.heads, seven.vision_hidden) == (
        4096, 11008, 32, 1024)


@pytest.mark.parametrize("layout", ["original", "llava-hf"])
def test_both_layouts_load_with_their_shapes(tmp_path, layout):
    from llara_export.models.checkpoint import load_checkpoint

    cfg = SMALL.with_(layout=layout)
    out = write_shaped(cfg, tmp_path / layout, real_vocab_path())
    model, tok, info = load_checkpoint(out)
    assert info.layout == layout
    assert (info.clip_dir is not None) == (layout == "original")
    assert tok.vocab_size == 32000
    assert model.llama_config.vocab_size == cfg.embedding_rows
    assert model.llama_config.num_hidden_layers == 1
    assert model.clip_config.num_hidden_layers == 2
    assert model.num_image_tokens == (56 // 14) ** 2
    assert info.spec.select_layer == -2 and info.spec.projector_type == "mlp2x_gelu"
    if layout == "llava-hf":
        assert info.image_token_index == 32000
    with pytest.raises(ConfigError):
        write_shaped(cfg, out, real_vocab_path())  # not empty, no overwrite
