"""llara_edge.llama, the owner layer over llama-cpp-python's raw bindings: the only caller of
them; every handle freed exactly once (close, `with`, garbage collection, a constructor
failing half-way); return codes as typed errors (EngineError, ContextFullError).

Frees are counted by wrapping the raw free functions before a handle is made (the owner
takes the free function when it takes the pointer)."""

from __future__ import annotations

import ast
import gc
import re
from pathlib import Path

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from runtime_artifact import shared_artifact  # noqa: E402

from llara_edge.backends.gguf import GgufBackend  # noqa: E402
from llara_edge.errors import ArtifactError, ContextFullError, EngineError, InputError  # noqa: E402
from llara_edge.llama import Batch, LlamaContext, LlamaModel, MtmdContext, load_llama_cpp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OWNER = ROOT / "llara_edge" / "llama"
SCANNED = ("llara_edge", "export", "benchmarks")
RAW_CALL = re.compile(r"\b(lc|llama_cpp)\.llama_(?!chat_format\b)|\bmtmd_cpp\.")
# llama-cpp-python's own high-level layer, which the stock-handler baseline benchmarks
HIGH_LEVEL = {("llama_cpp", "Llama"), ("llama_cpp", "LlamaGrammar"),
              ("llama_cpp", "LogitsProcessorList"),  # the 7B-shaped mode's teacher hook
              ("llama_cpp.llama_chat_format", "Llava15ChatHandler")}
FRAME = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def _raw_names() -> set[str]:
    """Every function and type of the raw bindings (llama_cpp.llama_cpp, mtmd_cpp)."""
    lc = load_llama_cpp()
    from llama_cpp import mtmd_cpp

    return {n for n in (*dir(lc.llama_cpp), *dir(mtmd_cpp)) if n.startswith(("llama_", "mtmd_"))}


def _raw_uses(text: str, rel: Path, raw: set[str]) -> list[str]:
    """Lines of `text` that reach the raw bindings: the patterns, any attribute named like a
    binding (however the module was named), and any import of llama_cpp other than the
    high-level API in benchmarks."""
    bench = rel.parts[0] == "benchmarks"
    found = [f"{rel}:{i}: {line.strip()}" for i, line in enumerate(text.splitlines(), 1)
             if RAW_CALL.search(line)]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Attribute) and node.attr in raw:
            found.append(f"{rel}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llama_cpp"):
            found += [f"{rel}:{node.lineno}: from {node.module} import {a.name}"
                      for a in node.names if not bench or (node.module, a.name) not in HIGH_LEVEL]
        elif isinstance(node, ast.Import):  # `import llama_cpp`: its version, in benchmarks
            found += [f"{rel}:{node.lineno}: import {a.name}" for a in node.names
                      if a.name.startswith("llama_cpp") and (a.name != "llama_cpp" or not bench)]
    return found


def test_no_raw_llama_cpp_call_outside_the_owner_layer():
    raw, found = _raw_names(), []
    files = [p for d in SCANNED for p in (ROOT / d).rglob("*.py")]
    for path in sorted(p for p in files if OWNER not in p.parents):
        found += _raw_uses(path.read_text(), path.relative_to(ROOT), raw)
    assert found == [], "raw llama.cpp outside llara_edge/llama:\n" + "\n".join(found)


def test_the_check_sees_raw_calls():
    """What the owner layer replaced is found, in every spelling."""
    bad = ("import llama_cpp\nllama_cpp.llama_decode(ctx, batch)\n"
           "from llama_cpp import mtmd_cpp as m\nm.mtmd_free(x)\nlc.llama_free(c)\n"
           "from llama_cpp import Llama\n")
    found = _raw_uses(bad, Path("llara_edge/x.py"), _raw_names())
    assert sorted(int(f.split(":")[1]) for f in found) == [1, 2, 2, 3, 4, 5, 5, 6]
    assert len(_raw_uses(bad, Path("benchmarks/x.py"), _raw_names())) == 6  # high-level is ok
    assert _raw_uses("m.llama_config\n", Path("export/x.py"), _raw_names()) == []


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    return shared_artifact(tmp_path_factory)


@pytest.fixture
def frees(monkeypatch):
    """Counts of the raw free calls (and their order) made while the test runs."""
    from llama_cpp import mtmd_cpp

    calls: list[str] = []
    lc = load_llama_cpp()
    for module, name in ((lc, "llama_model_free"), (lc, "llama_free"), (mtmd_cpp, "mtmd_free"),
                         (mtmd_cpp, "mtmd_bitmap_free"), (mtmd_cpp, "mtmd_input_chunks_free")):
        real = getattr(module, name)

        def counted(ptr, _real=real, _name=name):
            calls.append(_name)
            return _real(ptr)

        monkeypatch.setattr(module, name, counted)
    return calls


def test_close_twice_with_and_gc_free_each_handle_once(art, frees):
    model = LlamaModel(art / "llm-f16.gguf")
    with LlamaContext(model, n_ctx=256) as ctx:
        assert ctx.n_ctx == 256 and not ctx.closed
    ctx.close()
    assert ctx.closed and frees == ["llama_free"]
    model.close()
    model.close()
    assert frees == ["llama_free", "llama_model_free"]
    LlamaContext(LlamaModel(art / "llm-f16.gguf"), n_ctx=256)  # dropped at once
    gc.collect()
    assert frees[2:] == ["llama_free", "llama_model_free"]  # context first: it keeps its model
    with pytest.raises(EngineError, match="closed"):
        ctx.decode(Batch([1]))  # a freed pointer never reaches C


def test_closing_a_model_closes_its_contexts_first(art, frees):
    model = LlamaModel(art / "llm-f16.gguf")
    ctx = LlamaContext(model, n_ctx=256)
    mtmd = MtmdContext(art / "mmproj-f16.gguf", model)
    model.close()
    assert ctx.closed and mtmd.closed and sorted(frees[:2]) == ["llama_free", "mtmd_free"]
    assert frees[2:] == ["llama_model_free"]
    ctx.close()
    mtmd.close()
    gc.collect()
    assert len(frees) == 3


def test_a_context_that_fails_frees_the_model_once(art, frees, monkeypatch):
    lc = load_llama_cpp()
    monkeypatch.setattr(lc, "llama_init_from_model", lambda model, params: None)
    with pytest.raises(ArtifactError, match="cannot create a context"):
        GgufBackend(art / "llm-f16.gguf", n_ctx=256)
    assert frees == ["llama_model_free"]  # by the backend's ExitStack, before the error
    gc.collect()
    assert frees == ["llama_model_free"]  # and never again


def test_unloadable_files_are_artifact_errors_owning_nothing(tmp_path, frees):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF not really")
    with pytest.raises(ArtifactError, match="cannot load the GGUF"):
        LlamaModel(bad)
    gc.collect()
    assert frees == []


def test_mtmd_frees_its_bitmap_and_chunks_once_per_frame_even_on_failure(art, frees,
                                                                          monkeypatch):
    from llama_cpp import mtmd_cpp

    with LlamaModel(art / "llm-f16.gguf") as model, \
            MtmdContext(art / "mmproj-f16.gguf", model) as mtmd:
        assert mtmd.encode_image(FRAME).shape[1] == model.n_embd
        assert frees == ["mtmd_input_chunks_free", "mtmd_bitmap_free"]
        monkeypatch.setattr(mtmd_cpp, "mtmd_tokenize", lambda *args: 2)
        with pytest.raises(EngineError, match="mtmd_tokenize"):
            mtmd.encode_image(FRAME)
        assert frees.count("mtmd_bitmap_free") == frees.count("mtmd_input_chunks_free") == 2
    assert frees[-2:] == ["mtmd_free", "llama_model_free"]


def test_a_full_kv_cache_is_a_context_full_error(art):
    """llama.cpp's smallest context (256 positions) fills: code 1, no KV slot."""
    with LlamaModel(art / "llm-f16.gguf") as model, LlamaContext(model, n_ctx=256) as ctx:
        ctx.decode(Batch(list(range(3, 203))))
        with pytest.raises(ContextFullError, match="no KV slot"):
            ctx.decode(Batch(list(range(3, 103))))
        ctx.decode(Batch(list(range(3, 50))))  # the failed batch left the cache usable
        assert ctx.last_logits().shape == (model.n_vocab,)


def test_a_batch_llama_cpp_would_abort_on_is_refused(art):
    """llama.cpp rounds a tiny n_ctx up to 256 but keeps n_batch, and aborts the process on
    a batch above n_batch: the owner refuses it, the backend's room is the smaller one."""
    with LlamaModel(art / "llm-f16.gguf") as model, LlamaContext(model, n_ctx=16) as ctx:
        assert (ctx.n_ctx, ctx.n_batch) == (256, 16)
        with pytest.raises(InputError, match="n_batch 16"):
            ctx.decode(Batch(list(range(3, 23))))
        with pytest.raises(InputError, match="got 0"):
            ctx.decode(Batch([]))
    with GgufBackend(art / "llm-f16.gguf", n_ctx=16) as backend:
        assert backend.n_ctx == 16
        backend.prefill([list(range(3, 19))])
        with pytest.raises(ContextFullError, match="context full"):
            backend.extend([5])


def test_an_invalid_batch_is_an_engine_error(art):
    with LlamaModel(art / "llm-f16.gguf") as model, LlamaContext(model, n_ctx=256) as ctx:
        with pytest.raises(EngineError, match="code -1") as err:
            ctx.decode(Batch([model.n_vocab + 5]))  # the backend checks ids; C says -1
        assert not isinstance(err.value, ContextFullError)


@pytest.mark.parametrize(("rc", "error"), [(1, ContextFullError), (2, EngineError),
                                           (-3, EngineError)])
def test_backend_decode_failures_are_typed_and_keep_n_past(art, monkeypatch, rc, error):
    lc = load_llama_cpp()
    with GgufBackend(art / "llm-f16.gguf", n_ctx=256) as backend:
        backend.prefill([[1, 29, 41]])
        real = lc.llama_decode
        monkeypatch.setattr(lc, "llama_decode", lambda ctx, batch: rc)
        with pytest.raises(error, match=f"code {rc}" if rc != 1 else "no KV slot"):
            backend.extend([5, 6])
        assert backend.n_past == 3
        monkeypatch.setattr(lc, "llama_decode", real)
        assert backend.extend([5, 6]).shape == (2, backend.n_vocab)  # still usable


def test_backend_refuses_what_passes_n_ctx_before_llama_cpp(art):
    with GgufBackend(art / "llm-f16.gguf", n_ctx=256) as backend:
        backend.prefill([[1] * 250])
        with pytest.raises(ContextFullError, match="context full"):
            backend.extend([5] * 7)
        with pytest.raises(InputError, match="roll back"):
            backend.rollback(251)
        assert backend.n_past == 250


def test_vocab_only_model_tokenizes(art):
    with LlamaModel(art / "tokenizer.gguf", vocab_only=True) as vocab:
        ids = vocab.tokenize("Pick up the red block")
        assert ids and all(0 <= i < vocab.n_vocab for i in ids)
        assert vocab.tokenize("x", add_special=True)[0] != vocab.tokenize("x")[0]  # BOS


def test_the_gguf_tokenizer_owns_one_vocab_only_model(art, frees):
    from llara_edge.models.gguf_tokenizer import GgufTokenizer

    tok = GgufTokenizer(art / "tokenizer.gguf")
    assert tok.encode("Pick up the red block") == GgufTokenizer(
        art / "tokenizer.gguf", engine="python").encode("Pick up the red block")
    gc.collect()
    assert frees == []  # the reference engine holds no handle, the live llama.cpp one keeps it
    del tok
    gc.collect()
    assert frees == ["llama_model_free"]  # freed with its tokenizer, once
