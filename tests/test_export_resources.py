"""Per-stage wall time / peak RSS (export/llara_export/resources.py) and the streamed GGUF writer
against
gguf's own add_tensor path (the plain reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llara_export.resources import StageMeter, format_stages

pytest.importorskip("gguf")


def test_stage_peak_is_reset_per_stage():
    meter = StageMeter(interval_s=0.01)
    meter.start("allocate")
    block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
    del block
    meter.start("small")
    small = np.ones(1000)
    meter.close()
    big, after = meter.stages
    assert small.sum() == 1000
    assert [s["stage"] for s in meter.stages] == ["allocate", "small"]
    assert big["peak_rss_mb"] - big["start_rss_mb"] > 150
    assert after["peak_rss_mb"] - after["start_rss_mb"] < 50  # the peak was reset
    assert big["peak_anon_mb"] - after["peak_anon_mb"] > 150  # the block was anonymous
    assert "allocate" in format_stages(meter.stages)


def test_mapped_file_pages_count_in_rss_not_in_anon(tmp_path):
    """What onnxruntime does with a mapped llm.onnx.data: resident, but file-backed."""
    path = tmp_path / "weights.bin"
    np.ones(200 * 2**20 // 8).tofile(path)
    meter = StageMeter(interval_s=0.01)
    meter.start("map")
    mapped = np.memmap(path, dtype=np.float64, mode="r")
    assert mapped.sum() > 0  # every page touched
    meter.close()
    (stage,) = meter.stages
    del mapped
    assert stage["peak_rss_mb"] - stage["start_rss_mb"] > 150
    assert stage["peak_anon_mb"] < stage["peak_rss_mb"] - 150


def test_wrap_forwards_messages():
    seen = []
    meter = StageMeter()
    say = meter.wrap(seen.append)
    say("a")
    say("b")
    meter.close()
    assert seen == ["a", "b"] and len(meter.stages) == 2


def _reference_gguf(path, tensors, dtype):
    """gguf's add_tensor path: every converted tensor held until write_tensors_to_file."""
    import gguf

    from llara_export.gguf_llm import to_numpy

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("x")
    for name, t in tensors.items():
        writer.add_tensor(name, to_numpy(t, np.float32 if t.dim() == 1 else dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_streamed_gguf_equals_add_tensor_path(tmp_path):
    from llara_export.gguf_llm import Permuted, permute_rope, write_gguf

    g = torch.Generator().manual_seed(0)
    q = torch.randn(64, 32, generator=g)
    tensors = {"a.weight": torch.randn(48, 32, generator=g), "n.weight": torch.randn(32),
               "q.weight": Permuted(q, 4)}
    write_gguf(tmp_path / "s.gguf", "llama", lambda w: w.add_name("x"), tensors, np.float16,
               lambda _, t: t.dim() == 1)
    plain = {"a.weight": tensors["a.weight"], "n.weight": tensors["n.weight"],
             "q.weight": permute_rope(q, 4)}
    _reference_gguf(tmp_path / "r.gguf", plain, np.float16)
    assert (tmp_path / "s.gguf").read_bytes() == (tmp_path / "r.gguf").read_bytes()
