"""GGUF export: LLM (f32/f16/q8_0/q4_k_m) against the torch reference in llama.cpp, the mmproj
in llama.cpp's clip (including its upstream CLS defect, shown exactly), the stock handler.
llama.cpp runs through the runtime's gguf engine (llara_edge.backends.gguf.GgufBackend) and
the parity's greedy answer (llara_export.parity.greedy_answer), as the export's gate does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("llama_cpp")
gguf = pytest.importorskip("gguf")

from tiny_models import PROMPT, llara_conversations  # noqa: E402

from llara_bench.stock_llava import stock_chat_answer  # noqa: E402
from llara_edge.backends.gguf import GgufBackend  # noqa: E402
from llara_edge.models.gguf_tokenizer import GgufTokenizer  # noqa: E402
from llara_export.gguf_llm import write_llm_gguf  # noqa: E402
from llara_export.gguf_mmproj import FEATURE_LAYER_KEY, write_mmproj_gguf  # noqa: E402
from llara_export.models.checkpoint import save_original  # noqa: E402
from llara_export.models.llava import TinyConfig, build_tiny  # noqa: E402
from llara_export.models.tokenizer import train_spm  # noqa: E402
from llara_export.parity import greedy_answer, token_cosines  # noqa: E402
from llara_export.quantize import quantize_gguf  # noqa: E402
from llara_export.torch_ref import PolicyConfig, TorchPolicy  # noqa: E402

# widths 256/512 so k-quants apply; 3 CLIP layers -> 2 blocks kept for select layer -2
TINY = TinyConfig(vocab_size=400, image_size=56, vision_layers=3, max_positions=1024)
TEXT = "USER: Put the red block into the green pan. ASSISTANT:"


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> TorchPolicy:
    tok = tmp_path_factory.mktemp("tok")
    train_spm(llara_conversations(150), tok, vocab_size=TINY.vocab_size)
    ckpt = save_original(build_tiny(TINY, seed=4), tok, tmp_path_factory.mktemp("c") / "ck")
    return TorchPolicy.load(ckpt, PolicyConfig(max_new_tokens=12))


@pytest.fixture(scope="module")
def files(policy, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("gguf")
    b = policy.backend
    paths = {f: write_llm_gguf(b.model, b.tokenizer, out / f"llm-{f}.gguf", f)
             for f in ("f32", "f16")}
    for q in ("q8_0", "q4_k_m"):
        paths[q] = quantize_gguf(paths["f16"], out / f"llm-{q}.gguf", q).path
    paths["mmproj"] = write_mmproj_gguf(b.model, b.preprocess, out / "mmproj.gguf", "f32")
    return paths


def _text_logits(path: Path, ids: list[int]) -> np.ndarray:
    """Logits of every prompt position: one extend from an empty cache."""
    tok = GgufTokenizer(path)  # the tokenizer inside the GGUF gives the reference's ids
    assert [tok.bos_id, *tok.encode(TEXT)] == ids
    with GgufBackend(path, n_ctx=256) as llm:
        return llm.extend(ids)


@pytest.mark.parametrize(("ftype", "tol"), [("f32", 2e-3), ("f16", 1e-2), ("q8_0", 0.1)])
def test_llm_gguf_text_logits_match_torch(policy, files, ftype, tol):
    tok = policy.backend.tokenizer
    ids = [tok.bos_id, *tok.encode(TEXT)]
    with torch.no_grad():
        ref = policy.backend.model.llm(torch.tensor([ids])).logits[0].numpy()
    ours = _text_logits(files[ftype], ids)
    assert np.abs(ours - ref).max() < tol
    if ftype != "q8_0":
        assert (ours.argmax(-1) == ref.argmax(-1)).all()


def test_quantisation_is_llama_cpp_and_types_are_reported(files):
    from llara_export.quantize import tensor_types

    assert tensor_types(files["q8_0"]) == {"Q8_0": 16, "F32": 5}
    q4 = tensor_types(files["q4_k_m"])
    assert q4.get("Q4_K", 0) > 0 and set(q4) <= {"Q4_K", "Q6_K", "F32"}
    assert files["q4_k_m"].stat().st_size < files["q8_0"].stat().st_size


def test_mmproj_keys_and_dropped_last_block(files):
    reader = gguf.GGUFReader(str(files["mmproj"]))
    fields = reader.fields
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "clip"
    assert int(fields["clip.vision.block_count"].parts[-1][0]) == 2
    assert int(fields[FEATURE_LAYER_KEY].parts[-1][0]) == 2
    names = {t.name for t in reader.tensors}
    assert "v.blk.1.ffn_up.weight" in names and "v.blk.2.attn_q.weight" not in names
    assert {"mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"} <= names
    assert "v.post_ln.weight" not in names


def _clip_cpp_llava(model, px: torch.Tensor) -> np.ndarray:
    """What the bundled clip.cpp computes for a LLaVA mmproj: CLS appended after the patches,
    position rows in sequence order, output rows 1..N (patch 0 dropped, CLS kept)."""
    t = model.vision_tower
    with torch.no_grad():
        patches = t.embeddings.patch_embedding(px).flatten(2).transpose(1, 2)
        h = torch.cat([patches, t.embeddings.class_embedding[None, None]], 1)
        h = t.pre_layrnorm(h + t.embeddings.position_embedding.weight[None])
        for layer in t.encoder.layers[:2]:
            h = layer(h, None)
            h = h[0] if isinstance(h, tuple) else h
        return model.mm_projector(h[:, 1:])[0].numpy()


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    from llara_edge.cases import sim_frames

    return sim_frames(1, 56, 42)[0].rgb  # pads to 56x56: no resampling in either pipeline


def test_mmproj_in_clip_cpp_is_exact_up_to_its_cls_defect(policy, files, frame):
    with GgufBackend(files["f32"], n_ctx=256, mmproj_path=files["mmproj"]) as llm:
        got = llm.encode_image(frame)
    px = policy.backend.pixel_values(frame)
    defect = _clip_cpp_llava(policy.backend.model, px)
    ref = policy.backend.encode_image(frame).numpy()
    fixed = token_cosines(got, ref).min() > 0.999  # a llama.cpp without the defect
    assert fixed or token_cosines(got, defect).min() > 0.999


def test_llm_gguf_with_injected_embeddings_matches_reference_greedy(policy, files, frame):
    ids = policy.prompt_ids(PROMPT.render())
    embeds = policy.backend.encode_image(frame)
    _, ref_tokens, _ = policy.generate(frame, PROMPT.render())
    with GgufBackend(files["f16"]) as llm:
        _, tokens = greedy_answer(llm, ids, embeds.numpy(), 12, policy.backend.tokenizer.eos_id)
    assert tokens == ref_tokens


def test_stock_llava15_handler_loads_and_answers_as_predicted(policy, files, frame):
    answer, rendered = stock_chat_answer(files["f16"], files["mmproj"], frame,
                                         PROMPT.render(), 12)
    assert answer.strip()
    # prediction: the same LLM fed clip.cpp's (defective) features with the handler's prompt
    tok = policy.backend.tokenizer
    ids = tok.tokenizer_image_token(rendered)
    with GgufBackend(files["f16"], mmproj_path=files["mmproj"]) as llm:
        _, tokens = greedy_answer(llm, ids, llm.encode_image(frame), 12, tok.eos_id)
    assert answer.replace("\ufffd", "").strip() == tok.decode(tokens).replace("\ufffd", "").strip()
