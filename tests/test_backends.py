"""Backend interface conformance (torch, gguf, onnx; trt skips without TensorRT), vision
engines, cross-backend logits, registry and lazy imports, on an exported tiny-llara."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("onnxruntime")

from runtime_artifact import shared_artifact

from llara_edge.backends.base import (
    Backend,
    backend_names,
    make_backend,
    make_vision,
    register_backend,
)
from llara_edge.backends.gguf import GgufBackend
from llara_edge.errors import (
    ConfigError,
    ContextFullError,
    DeviceError,
    EngineError,
    InputError,
)
from llara_edge.runtime.artifact import Artifact
from llara_edge.runtime.config import CACHE_TYPES_K, RuntimeConfig

CONFIG = RuntimeConfig(variant="f16", threads=1, n_ctx=256, grammar_cache_dir=None)
LLMS = ("torch", "gguf", "onnx")
RNG = np.random.default_rng(0)
FRAME = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Artifact:
    return Artifact.open(shared_artifact(tmp_path_factory))


@pytest.fixture(scope="module")
def backends(artifact):
    made = {name: make_backend(name, artifact, CONFIG) for name in LLMS}
    yield made
    for b in made.values():
        b.close()


@pytest.fixture(scope="module")
def inputs(backends):
    """Token runs and a (N, hidden) embedding block shaped like the real image input."""
    hidden = backends["torch"].hidden_size
    embeds = (RNG.standard_normal((16, hidden)) * 0.05).astype(np.float32)
    return [1, 29, 41, 57, 9], embeds, [33, 12, 70], [5, 300, 301, 17]


def _close(a: np.ndarray, b: np.ndarray, rel: float) -> None:
    scale = max(1.0, float(np.abs(b).max()))
    assert np.abs(a - b).max() <= rel * scale, (np.abs(a - b).max(), scale)


@pytest.mark.parametrize("name", LLMS)
def test_prefill_then_extend_equals_one_shot(backends, inputs, name):
    b, (head, emb, mid, tail) = backends[name], inputs
    one_shot = b.set_prefix([head, emb, mid + tail])
    assert one_shot.shape == (b.n_vocab,) and b.n_past == len(head) + len(emb) + 7
    b.reset()
    assert b.n_past == 0 and b.n_prefix == 0
    b.prefill([head, emb, mid])
    rows = b.extend(tail)
    assert rows.shape == (len(tail), b.n_vocab) and rows.dtype == np.float32
    _close(rows[-1], one_shot, 2e-3)


@pytest.mark.parametrize("name", LLMS)
def test_rollback_then_reextend_gives_the_same_logits(backends, inputs, name):
    b, (head, emb, mid, tail) = backends[name], inputs
    b.reset()
    b.prefill([head, emb, mid])
    first = b.extend(tail)
    n = b.n_past
    b.rollback(len(tail))
    assert b.n_past == n - len(tail)
    again = b.extend(tail)
    _close(again, first, 1e-5)
    with pytest.raises(InputError, match="roll back"):
        b.rollback(b.n_past + 1)


@pytest.mark.parametrize("name", LLMS)
def test_prefix_reuse_across_steps_equals_fresh_prefill(backends, inputs, name):
    b, (head, emb, mid, tail) = backends[name], inputs
    emb2 = emb[::-1].copy()
    b.set_prefix([head])
    b.prefill([emb, mid])
    b.extend(tail)  # step 1 decodes...
    b.reset_to_prefix()  # ...step 2 starts from the kept prefix
    assert b.n_past == b.n_prefix == len(head)
    reused = b.prefill([emb2, mid])
    b.reset()
    fresh = b.prefill([head, emb2, mid])
    _close(reused, fresh, 2e-3)
    assert int(np.argmax(reused)) == int(np.argmax(fresh))


@pytest.mark.parametrize("name", LLMS)
def test_bad_inputs_and_a_full_context_are_typed_runtime_errors(backends, inputs, name):
    b, emb = backends[name], inputs[1]
    b.reset()
    with pytest.raises(InputError, match="at least one"):
        b.extend([])
    with pytest.raises(InputError, match="token ids"):
        b.prefill([[b.n_vocab]])
    with pytest.raises(InputError, match="embeddings"):
        b.prefill([emb[:, :-1]])
    with pytest.raises(ContextFullError, match="context full"):
        b.prefill([[1] * (b.n_ctx + 1)])
    assert b.n_past == 0
    with pytest.raises(InputError, match="uint8"):
        b.encode_image(FRAME.astype(np.float32))


def test_a_failing_onnxruntime_run_is_an_engine_error(backends):
    runner = backends["onnx"].llm
    with pytest.raises(EngineError, match=r"llm\.onnx") as err:
        runner({"inputs_embeds": np.zeros((1, 2, 3), np.float32)})  # wrong width, no cache
    assert not isinstance(err.value, ConfigError)


def test_backends_agree_with_the_torch_reference(backends, inputs):
    head, emb, mid, tail = inputs
    logits = {name: b.set_prefix([head, emb, mid + tail]) for name, b in backends.items()}
    ref = logits["torch"]
    _close(logits["onnx"], ref, 1e-4)  # fp32 graph
    _close(logits["gguf"], ref, 2e-2)  # f16 weights, f16 KV cache
    assert len({int(np.argmax(v)) for v in logits.values()}) == 1


@pytest.mark.parametrize("cache_type_k", CACHE_TYPES_K)
def test_every_gguf_k_cache_type_agrees_with_the_reference(artifact, backends, inputs,
                                                           cache_type_k):
    head, emb, mid, tail = inputs
    backends["torch"].reset()
    backends["torch"].prefill([head, emb, mid])
    ref = backends["torch"].extend(tail)
    b = make_backend("gguf", artifact, replace(CONFIG, cache_type_k=cache_type_k))
    try:
        b.prefill([head, emb, mid])
        rows = b.extend(tail)  # the K cache is read by every row
    finally:
        b.close()
    _close(rows, ref, 2e-2)
    assert (rows.argmax(1) == ref.argmax(1)).all()


def test_unknown_k_cache_type_is_a_config_error(artifact):
    with pytest.raises(ConfigError, match="cache_type_k"):
        RuntimeConfig(cache_type_k="q4_0")
    with pytest.raises(ConfigError, match="cache_type_k"):
        GgufBackend(artifact.gguf("f16"), 64, 1, cache_type_k="q4_0")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_vision_engines_agree(artifact, backends):
    ref_timings = dict.fromkeys(("preprocess", "vision", "projector"), 0.0)
    ref = make_vision("torch", artifact, CONFIG, backends["torch"]).encode(FRAME, ref_timings)
    assert ref_timings["vision"] > 0 and ref_timings["projector"] > 0
    for name in ("onnx", "onnx+fused"):
        timings = dict.fromkeys(ref_timings, 0.0)
        out = make_vision(name, artifact, CONFIG, backends["gguf"]).encode(FRAME, timings)
        assert out.shape == ref.shape and out.dtype == np.float32
        assert _cosines(out, ref).min() > 0.999, name
    assert (timings["projector"] > 0) and ref.shape[1] == backends["gguf"].hidden_size
    native = make_vision("native", artifact, CONFIG, backends["onnx"]).encode(FRAME, timings)
    assert _cosines(native, ref).min() > 0.999  # onnx's own encode_image is vision.onnx
    clip = backends["gguf"].encode_image(FRAME)  # llama.cpp's clip: shape only (defect)
    assert clip.shape == ref.shape


def test_onnx_provider_fallback_is_recorded(artifact):
    cfg = RuntimeConfig(threads=1, providers=("tensorrt", "cuda", "cpu"), grammar_cache_dir=None)
    import onnxruntime as ort

    missing = [p for p, ep in (("tensorrt", "TensorrtExecutionProvider"),
                               ("cuda", "CUDAExecutionProvider"))
               if ep not in ort.get_available_providers()]
    b = make_backend("onnx", artifact, cfg)
    try:
        assert b.fallback == missing and b.providers[-1] == "CPUExecutionProvider"
    finally:
        b.close()


def test_onnx_sessions_do_not_spin(backends):
    """Idle ORT workers must not busy-wait: they would take the cores llama.cpp needs next
    (see the llara_edge.backends.onnx module note)."""
    onnx = backends["onnx"]
    for runner in (onnx.embed, onnx.llm):
        opts = runner.session.get_session_options()
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_trt_backend_without_tensorrt_is_a_device_error(artifact):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here: test_trt_backend_conformance runs instead")
    with pytest.raises(DeviceError, match="tensorrt"):
        make_backend("trt", artifact, CONFIG)


def test_trt_backend_conformance(artifact, inputs):
    pytest.importorskip("tensorrt", reason="TensorRT is absent (no GPU on this machine): "
                        "engines are built and run on the target only")
    head, emb, mid, tail = inputs
    with make_backend("trt", artifact, CONFIG) as b:
        one_shot = b.set_prefix([head, emb, mid + tail])
        b.reset_to_prefix()
        b.reset()
        b.prefill([head, emb, mid])
        _close(b.extend(tail)[-1], one_shot, 2e-2)  # FP16 engine


def test_registry_names_and_custom_backends(artifact):
    assert {"gguf", "onnx", "trt", "torch"} <= set(backend_names())
    with pytest.raises(ConfigError, match="unknown backend 'tflite'"):
        make_backend("tflite", artifact, CONFIG)
    with pytest.raises(ConfigError, match="unknown vision engine"):
        make_vision("clip.cpp", artifact, CONFIG, None)

    @register_backend("test-echo")
    class Echo:
        @classmethod
        def from_artifact(cls, art, cfg):
            return (art, cfg)

    assert make_backend("test-echo", artifact, CONFIG) == (artifact, CONFIG)
    assert issubclass(type(make_backend("onnx", artifact, CONFIG)), Backend)


def test_runtime_imports_engines_lazily():
    code = ("import sys\nimport llara_edge.runtime.policy, llara_edge.backends.base\n"
            "print(sorted(m for m in ('torch', 'llama_cpp', 'onnxruntime', 'tensorrt') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
