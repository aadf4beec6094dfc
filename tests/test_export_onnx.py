"""ONNX export: vision graphs with the preprocessing folded in, embed + KV-cache LLM graphs, run
with onnxruntime against the torch reference, for random tiny LLaVAs in both checkpoint layouts.
The graphs run in the runtime's own engines (llara_edge.backends: OrtRunner sessions, the onnx
KV-cache backend, the onnx and onnx+fused vision engines), as the export's parity gate runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tiny_models import random_llava_hf

from llara_edge.backends.kv import KVCacheBackend
from llara_edge.backends.onnx import OrtRunner
from llara_edge.backends.vision import FusedOnnxVision, OnnxVision, load_projector
from llara_edge.errors import ArtifactError
from llara_edge.models.preprocess import PreprocessConfig, preprocess_image
from llara_edge.runtime.config import RuntimeConfig
from llara_export.models.checkpoint import load_checkpoint, save_original
from llara_export.models.llava import IMAGE_TOKEN_INDEX, TinyConfig, build_tiny
from llara_export.models.tokenizer import train_spm
from llara_export.onnx_common import past_names as onnx_past_names
from llara_export.onnx_llm import export_llm
from llara_export.onnx_preprocess import preprocess_error, preprocess_model
from llara_export.onnx_vision import export_vision
from llara_export.parity import greedy_answer, token_cosines

VOCAB = 300
# GQA (4 query heads over 2 kv heads) in the original layout; 3 CLIP layers -> 2 kept
TINY = TinyConfig(vocab_size=VOCAB, image_size=56, vision_hidden=64, vision_heads=2,
                  vision_intermediate=128, vision_layers=3, hidden=64, intermediate=128,
                  heads=4, kv_heads=2, max_positions=256)
LOGIT_TOL = 1e-4  # fp32 torch vs onnxruntime, measured ~1e-6
FRAMES = {"landscape": (48, 64), "portrait": (90, 50)}  # H, W of the raw camera frames
CONFIG = RuntimeConfig(threads=1, grammar_cache_dir=None)
TIMINGS = ("preprocess", "vision", "projector")


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok")
    texts = [f"USER: put block {i} at ({i / 7:.3f}, 0.5) ASSISTANT: ok" for i in range(120)]
    train_spm(texts, out, vocab_size=VOCAB)
    return out


def _hf_checkpoint(tok_dir: Path, where: Path) -> Path:
    return random_llava_hf(tok_dir, where, VOCAB)


@pytest.fixture(scope="module", params=["original", "llava-hf"])
def exported(request, tok_dir, tmp_path_factory):
    """(model, preprocess, export dir) of one layout, loaded back through load_checkpoint."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "original":
        ckpt = save_original(build_tiny(TINY, seed=3), tok_dir, root / "ckpt")
    else:
        ckpt = _hf_checkpoint(tok_dir, root / "ckpt")
    model, _, info = load_checkpoint(ckpt)
    assert info.layout == request.param
    out = root / "onnx"
    out.mkdir()
    export_vision(model, info.preprocess, out, root / "scratch")
    export_llm(model, out, root / "scratch")
    return model, info.preprocess, out


def _backend(directory: Path) -> KVCacheBackend:
    """The runtime's onnx engine over a directory's embed.onnx + llm.onnx (+ vision.onnx)."""
    vision = directory / "vision.onnx"
    return KVCacheBackend(OrtRunner(directory / "embed.onnx", CONFIG),
                          OrtRunner(directory / "llm.onnx", CONFIG),
                          OrtRunner(vision, CONFIG) if vision.is_file() else None, n_ctx=256)


@pytest.fixture(scope="module")
def backend(exported) -> KVCacheBackend:
    return _backend(exported[2])


def test_llm_logits_match_torch(exported, backend):
    model = exported[0]
    gen = torch.Generator().manual_seed(0)
    embeds = torch.randn(1, 11, model.llama_config.hidden_size, generator=gen)
    with torch.no_grad():
        ref = model.llm(inputs_embeds=embeds).logits[0].numpy()
    backend.reset()
    rows = np.stack([backend.prefill([e[None]]) for e in embeds[0].numpy()])  # P = 0 .. 10
    assert rows.shape == ref.shape and np.abs(rows - ref).max() < LOGIT_TOL
    backend.reset()
    assert np.abs(backend.prefill([embeds[0].numpy()]) - ref[-1]).max() < LOGIT_TOL
    assert backend.n_layers == model.llama_config.num_hidden_layers and backend.n_past == 11


def test_chunked_prefill_and_rollback_equal_one_shot(exported, backend):
    hidden = exported[0].llama_config.hidden_size
    embeds = np.random.default_rng(1).standard_normal((10, hidden)).astype(np.float32)
    backend.reset()
    step = [backend.prefill([embeds[i : i + 1]]) for i in range(10)]
    backend.reset()
    whole = backend.prefill([embeds])
    backend.reset()
    for lo, hi in ((0, 4), (4, 5), (5, 10)):  # P = 0, then a single position, then a chunk
        last = backend.prefill([embeds[lo:hi]])
        assert np.abs(last - step[hi - 1]).max() < 1e-5
    assert np.abs(last - whole).max() < 1e-5
    # roll back 3 positions (the cache sliced on axis 2), then re-feed: the same logits
    backend.rollback(3)
    assert np.abs(backend.prefill([embeds[7:]]) - whole).max() < 1e-5


def _reference(model, pre: PreprocessConfig, frame: np.ndarray):
    pixels = torch.from_numpy(preprocess_image(frame, pre))[None]
    with torch.no_grad():
        out = model.vision_tower(pixels, output_hidden_states=True)
        feats = out.hidden_states[model.spec.select_layer][0].numpy()
        return model.encode_images(pixels)[0].numpy(), feats


@pytest.mark.parametrize("shape", list(FRAMES.values()), ids=list(FRAMES))
def test_vision_graphs_on_raw_frames_match_reference(exported, backend, shape):
    model, pre, out = exported
    frame = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ref_embeds, ref_feats = _reference(model, pre, frame)
    vision = OnnxVision(OrtRunner(out / "vision.onnx", CONFIG), backend)
    embeds = vision.encode(frame, dict.fromkeys(TIMINGS, 0.0))
    assert embeds.shape == ref_embeds.shape == (16, model.llama_config.hidden_size)
    assert token_cosines(embeds, ref_embeds).min() >= 0.999
    runner = OrtRunner(out / "vision_features.onnx", CONFIG)
    features = FusedOnnxVision(runner, *load_projector(out / "projector.safetensors", 1), backend)
    fused = features.encode(frame, dict.fromkeys(TIMINGS, 0.0))
    assert token_cosines(fused, ref_embeds).min() >= 0.999
    feats = runner({"frame": frame})["features"]
    assert feats.shape == ref_feats.shape == (17, 64)  # CLS included
    assert token_cosines(feats, ref_feats).min() >= 0.999


def test_last_clip_block_and_post_norm_are_not_in_the_graph(exported):
    import onnx

    graph = onnx.load(str(exported[2] / "vision.onnx")).graph
    blocks = {n.name.split("/")[1] for n in graph.node if n.name.startswith("/layers.")}
    assert blocks == {"layers.0", "layers.1"}  # 3-layer tower, select layer -2
    assert not [n for n in graph.node if "post_layernorm" in n.name]
    assert [i.name for i in graph.input] == ["frame"]
    assert [o.name for o in graph.output] == ["image_embeds"]


def test_projector_weights_are_the_kernel_layout(exported):
    model, _, out = exported
    weights, drop = load_projector(out / "projector.safetensors", default_drop=0)
    assert drop == 1 and weights.dims == (64, model.llama_config.hidden_size,
                                          model.llama_config.hidden_size)
    np.testing.assert_array_equal(weights.w1, model.mm_projector[0].weight.detach().numpy().T)
    np.testing.assert_array_equal(weights.b2, model.mm_projector[2].bias.detach().numpy())


def test_greedy_answer_through_the_kv_cache_equals_torch(exported, backend):
    model = exported[0]
    frame = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ids = [1, 5, 9, IMAGE_TOKEN_INDEX, 7, 8, 30, 31]
    pixels = torch.from_numpy(preprocess_image(frame, exported[1]))[None]
    ref = model.generate_greedy(torch.tensor([ids]), pixels, max_new_tokens=8, eos_token_id=None)
    _, tokens = greedy_answer(backend, ids, backend.encode_image(frame), 8, eos_id=-1)
    assert tokens == ref


@pytest.mark.parametrize(("pre", "bound"), [
    (PreprocessConfig(image_size=56), 1.0),
    (PreprocessConfig(image_size=112), 2.0),  # upscaling 64 -> 112: measured 1, allow 2
    (PreprocessConfig(image_size=56, shortest_edge=64, aspect_ratio="crop"), 1.0),
])
def test_preprocess_graph_matches_pil_within_one_or_two_levels(pre, bound):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    smooth = np.stack([128 + 100 * np.sin(xx / 7 + c) * np.cos(yy / 11) for c in range(3)], -1)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
              rng.integers(0, 256, (90, 50, 3), dtype=np.uint8),
              rng.integers(0, 256, (56, 56, 3), dtype=np.uint8), smooth.astype(np.uint8)]
    err = preprocess_error(preprocess_model(pre), frames, pre)
    assert err["max_abs_lsb"] <= bound and err["mismatch_fraction"] < 0.01


def test_corrupt_or_missing_graphs_are_artifact_errors(exported, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(exported[2], bad)
    (bad / "llm.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ArtifactError, match=r"llm\.onnx"):
        _backend(bad)
    (bad / "llm.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"cannot load .*llm\.onnx"):
        _backend(bad)
    data = (bad / "projector.safetensors").read_bytes()
    (bad / "projector.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(ArtifactError, match="projector"):
        load_projector(bad / "projector.safetensors", 1)


def test_large_graphs_keep_weights_in_one_external_data_file(exported, backend, tmp_path,
                                                             monkeypatch):
    """Graphs above EXTERNAL_DATA_BYTES (a 7B LLM) are saved as NAME.onnx + NAME.onnx.data."""
    from llara_export import onnx_common

    monkeypatch.setattr(onnx_common, "EXTERNAL_DATA_BYTES", 0)
    files = export_llm(exported[0], tmp_path, tmp_path / "scratch").files
    assert sorted(p.name for p in files) == ["embed.onnx", "embed.onnx.data", "llm.onnx",
                                             "llm.onnx.data"]
    assert (tmp_path / "llm.onnx").stat().st_size < (tmp_path / "llm.onnx.data").stat().st_size
    shutil.copy(exported[2] / "vision.onnx", tmp_path / "vision.onnx")
    embeds = np.random.default_rng(2).standard_normal((5, backend.hidden_size))
    backend.reset()
    ref = backend.prefill([embeds.astype(np.float32)])
    ours = _backend(tmp_path).prefill([embeds.astype(np.float32)])
    np.testing.assert_array_equal(ours, ref)


def test_streamed_weights_are_aligned_transposed_and_named(exported, tmp_path, monkeypatch):
    """External data: every weight at an ALIGN-byte offset (onnxruntime maps it), stored as
    MatMul's [in, out] under the checkpoint's own names, the bytes of the torch weight."""
    import onnx

    from llara_export import onnx_common
    from llara_export.onnx_weights import ALIGN

    monkeypatch.setattr(onnx_common, "EXTERNAL_DATA_BYTES", 0)
    model = exported[0]
    export_llm(model, tmp_path)
    graph = onnx.load(str(tmp_path / "llm.onnx"), load_external_data=False).graph
    external = {t.name: {e.key: e.value for e in t.external_data} for t in graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL}
    assert external and all(int(e["offset"]) % ALIGN == 0 for e in external.values())
    data = (tmp_path / "llm.onnx.data").read_bytes()
    entry = external["layers.0.self_attn.q_proj.weight"]
    start = int(entry["offset"])
    stored = np.frombuffer(data[start:start + int(entry["length"])], dtype="<f4")
    want = model.llm.model.layers[0].self_attn.q_proj.weight.detach().numpy().T
    np.testing.assert_array_equal(stored.reshape(want.shape), want)
    assert not list(tmp_path.glob(".*")), "no temporary file is left behind"
    import onnxruntime as ort

    from llara_edge.backends.onnx import map_external_weights

    opts = ort.SessionOptions()  # a graph with external data runs from its mapped file
    assert map_external_weights(opts, tmp_path / "llm.onnx")
    assert opts.get_session_config_entry("session.disable_prepacking") == "1"
    assert not map_external_weights(ort.SessionOptions(), exported[2] / "llm.onnx")


def _variant_llm(**overrides):
    from types import SimpleNamespace

    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=128,
                      **overrides)
    torch.manual_seed(5)
    llm = LlamaForCausalLM(cfg).eval()
    return SimpleNamespace(llm=llm, llama_config=cfg)


VARIANTS = {
    "biases": {"attention_bias": True, "mlp_bias": True},
    "rope-linear": {"rope_parameters": {"rope_type": "linear", "factor": 2.0,
                                        "rope_theta": 10000.0}},
    "rope-yarn": {"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0,
                                      "original_max_position_embeddings": 32}},
    "tied-head": {"tie_word_embeddings": True},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_llama_variants_match_torch(variant, tmp_path):
    """Biases, scaled RoPE (yarn scales cos/sin), 4:1 grouped-query heads, a tied head."""
    import onnxruntime as ort

    model = _variant_llm(**VARIANTS[variant])
    if variant == "rope-yarn":
        assert model.llm.model.rotary_emb.attention_scaling != 1.0
    if variant == "biases":
        torch.nn.init.normal_(model.llm.model.layers[0].self_attn.q_proj.bias)
    export_llm(model, tmp_path)
    sess = ort.InferenceSession(str(tmp_path / "llm.onnx"), providers=["CPUExecutionProvider"])
    embeds = torch.randn(1, 9, 32, generator=torch.Generator().manual_seed(1))
    positions = torch.arange(40, 49)[None]  # far from 0: the RoPE scaling shows
    with torch.no_grad():
        ref = model.llm(inputs_embeds=embeds, position_ids=positions).logits[0].numpy()
    feeds = {"inputs_embeds": embeds.numpy(), "position_ids": positions.numpy()}
    feeds.update({name: np.zeros((1, 1, 0, 8), np.float32) for i in range(2)
                  for name in onnx_past_names(i)})
    logits = sess.run(["logits"], feeds)[0][0]
    assert np.abs(logits - ref).max() < LOGIT_TOL


@pytest.mark.parametrize("change", ["activation", "rope"])
def test_unsupported_decoders_are_refused(change, tmp_path):
    model = _variant_llm()
    if change == "activation":
        model.llama_config.hidden_act = "gelu"
    else:
        model.llm.model.rotary_emb.rope_type = "dynamic"
    with pytest.raises(ArtifactError, match="activation" if change == "activation" else "RoPE"):
        export_llm(model, tmp_path)
    assert not list(tmp_path.iterdir()), "nothing is written for a refused model"


def test_graph_benchmark_compares_two_exports(exported, tmp_path, capsys):
    """bench_onnx_graphs: a re-export of the same model gives the same logits (diff 0)."""
    import json

    from llara_bench import bench_onnx_graphs

    export_llm(exported[0], tmp_path)
    assert bench_onnx_graphs.main([str(exported[2]), str(tmp_path), "--prefill", "6",
                                   "--decode", "2", "--repeats", "1", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    res = json.loads(lines[-1])
    assert "ratio" in lines[-3] and res["max_logit_diff"] == 0.0
    assert res["candidate"]["prefill_ms"] > 0 and res["prefill_ms_ratio"] > 0
