"""`llara-edge export` end to end: artifact directory (GGUF + ONNX), manifest hashes, parity
gate, progress bar, bad input (one error line, exit 2, nothing left behind), a llava-hf model
built by transformers."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from tiny_models import random_llava_hf

from llara_edge.cli.main import main
from llara_edge.errors import ArtifactError, DeviceError
from llara_export.manifest import load_manifest
from llara_export.models.checkpoint import save_original
from llara_export.models.llava import TinyConfig, build_tiny
from llara_export.models.tokenizer import train_spm
from llara_export.pipeline import ExportConfig, count_steps
from llara_export.progress import ProgressBar

TINY = TinyConfig(vocab_size=300, image_size=56, vision_layers=3, max_positions=512)
FAST = ["--frames", "1", "--frame-size", "64x48", "--max-new-tokens", "6"]
ONNX_FILES = {"vision.onnx", "vision_features.onnx", "projector.safetensors", "embed.onnx",
              "llm.onnx"}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    texts = [f"USER: put block {i} at ({i / 7:.3f}, 0.5) rotate [{i}] ASSISTANT: ok"
             for i in range(200)]
    out = tmp_path_factory.mktemp("tok")
    train_spm(texts, out, vocab_size=TINY.vocab_size)
    return out


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tok_dir) -> Path:
    return save_original(build_tiny(TINY, seed=1), tok_dir, tmp_path_factory.mktemp("c") / "ck")


@pytest.fixture(scope="module")
def exported(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("e") / "art"
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        rc = main(["export", str(ckpt), "--out", str(out), "--quant", "q8_0", *FAST])
    return rc, out, err.getvalue(), std.getvalue()


def test_export_writes_a_verified_artifact(exported):
    rc, out, *_ = exported
    assert rc == 0
    manifest = load_manifest(out)
    assert set(manifest["files"]) == {"llm-f16.gguf", "llm-q8_0.gguf", "mmproj-f16.gguf",
                                      "tokenizer.model", "tokenizer.gguf", *ONNX_FILES}
    assert manifest["tokenizer"] == "tokenizer.gguf"  # what the runtime tokenises with
    assert "answer_forms" not in manifest and "prompt_variant" not in manifest  # not known
    assert manifest["source"]["layout"] == "original" and len(manifest["source"]["sha256"]) == 64
    rows = {r["name"]: r for r in manifest["parity"]["results"]}
    assert rows["f16"]["answer_agreement"] == 1.0 and rows["f16"]["max_logit_diff"] < 0.05
    assert rows["onnx"]["answer_agreement"] == 1.0 and rows["onnx"]["max_logit_diff"] < 1e-3
    assert rows["onnx"]["min_cosine"] > 0.999 and rows["onnx-features"]["min_cosine"] > 0.999
    onnx = manifest["onnx"]
    assert {onnx[k] for k in ("vision", "vision_features", "projector", "embed", "llm")} == \
        ONNX_FILES
    assert onnx["opset"] >= 17 and onnx["onnxruntime_version"] and onnx["layers"] == TINY.layers
    assert onnx["preprocess_error"]["max_abs_lsb"] <= 2
    assert manifest["tensorrt"]["available"] is False or manifest["tensorrt"]["version"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_every_progress_step_is_a_measured_stage(exported):
    rc, _, _, stdout = exported
    stages = json.loads(stdout.strip().splitlines()[-1])["stages"]
    cfg = ExportConfig(checkpoint=Path("x"), out=Path("y"), quants=("q8_0",))
    assert rc == 0 and len(stages) == count_steps(cfg)
    assert stages[0]["stage"].startswith("loading") and stages[-1]["stage"] == \
        "writing manifest.json"
    assert all(s["seconds"] > 0 and s["peak_rss_mb"] >= s["start_rss_mb"] > 0 for s in stages)
    assert "peak MiB" in stdout and "writing llm-f16.gguf" in stdout


def test_progress_bar_counts_every_step(exported):
    lines = [ln for ln in exported[2].splitlines() if ln.startswith("[export] [")]
    cfg = ExportConfig(checkpoint=Path("x"), out=Path("y"), quants=("q8_0",))
    total = count_steps(cfg)
    assert len(lines) == total and f" {total}/{total} " in lines[-1]
    assert "writing manifest.json" in lines[-1] and "#" * 20 in lines[-1]


def test_progress_bar_redraws_in_place_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    ticks = iter([0.0, 5.0, 75.0])
    stream = Tty()
    bar = ProgressBar(2, stream=stream, width=4, clock=lambda: next(ticks))
    bar("one")
    bar("two")
    bar.close()
    assert stream.getvalue() == ("\r\x1b[K[export] [##..] 1/2  0:05  one"
                                 "\r\x1b[K[export] [####] 2/2  1:15  two\n")


def test_manifest_refuses_altered_or_truncated_files(exported, tmp_path):
    _, out, *_ = exported
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with open(copy / "llm-q8_0.gguf", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(ArtifactError, match="sha256"):
        load_manifest(copy)
    os.truncate(copy / "tokenizer.model", 10)
    with pytest.raises(ArtifactError):
        load_manifest(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        load_manifest(copy)


def test_failing_gate_exits_1_and_publishes_nothing(ckpt, tmp_path, capsys):
    strict = tmp_path / "strict.json"
    bound = {"min_cosine": None, "max_logit_diff": 0.0, "min_answer_agreement": None,
             "max_action_px": None}
    strict.write_text(json.dumps({"f16": bound, "mmproj": bound}))
    out = tmp_path / "art"
    rc = main(["export", str(ckpt), "--out", str(out), "--formats", "gguf", "--quant", "",
               "--thresholds", str(strict), *FAST])
    captured = capsys.readouterr()
    assert rc == 1 and not out.exists() and list(tmp_path.iterdir()) == [strict]
    assert "FAIL: max_logit_diff" in captured.out
    assert json.loads(captured.out.strip().splitlines()[-1])["ok"] is False


def test_onnx_only_export_and_format_errors(ckpt, tmp_path, capsys):
    """Also: the checkpoint's text formats (what training wrote next to the weights) and the
    --prompt-variant option go into the manifest, where the runtime reads them."""
    import shutil

    from llara_export.text_formats import write_text_formats

    trained = tmp_path / "trained"
    shutil.copytree(ckpt, trained)
    write_text_formats(trained, ["numbered"], "standard")
    out = tmp_path / "art"
    assert main(["export", str(trained), "--out", str(out), "--formats", "onnx",
                 "--prompt-variant", "scene_no_final_period", *FAST]) == 0
    manifest = load_manifest(out)
    assert (manifest["answer_forms"], manifest["prompt_variant"]) == (
        ["numbered"], "scene_no_final_period")
    assert set(manifest["files"]) == {"tokenizer.model", "tokenizer.gguf", *ONNX_FILES}
    assert "llm" not in manifest and manifest["formats"] == ["onnx"]
    # no LLM GGUF: the runtime's tokenizer is the vocab-only GGUF, the same ids as the reference
    from llara_edge.runtime.artifact import Artifact
    from llara_export.models.tokenizer import SpmTokenizer

    text = "Put the red block into the green pan. Step 1: Pick up the <p>red block</p>"
    assert Artifact.open(out).tokenizer().encode(text) == SpmTokenizer.from_dir(ckpt).encode(text)
    assert [r["name"] for r in manifest["parity"]["results"]] == ["onnx", "onnx-features"]
    capsys.readouterr()
    for bad in (["--formats", "onnx", "--quant", "q8_0"], ["--formats", "tflite"],
                ["--answer-forms", "numbered,roman"], ["--prompt-variant", "nodot"]):
        assert main(["export", str(ckpt), "--out", str(tmp_path / "x"), *bad, *FAST]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
            "llara-edge export: error:")
    assert not (tmp_path / "x").exists()


def _edit(path: Path, **changes) -> None:
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


def _broken(ckpt: Path, tmp_path: Path, how: str) -> Path:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    if how == "architecture":
        _edit(bad / "config.json", architectures=["MistralForCausalLM"])
    elif how == "tokenizer":
        (bad / "tokenizer.model").unlink()
    elif how == "clip":
        _edit(bad / "clip" / "config.json", hidden_size=64, num_attention_heads=2)
    elif how == "truncated":
        os.truncate(bad / "model.safetensors", (bad / "model.safetensors").stat().st_size // 2)
    return bad


@pytest.mark.parametrize(("how", "message"), [
    ("architecture", "unknown architecture"), ("tokenizer", "missing tokenizer"),
    ("clip", "mismatched"), ("truncated", "safetensors"),
])
def test_bad_input_one_error_line_nothing_written(ckpt, tmp_path, capsys, how, message):
    bad = _broken(ckpt, tmp_path, how)
    out = tmp_path / "art"
    assert main(["export", str(bad), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("llara-edge export: error:") and message in err[-1]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


def test_unwritable_output(ckpt, tmp_path, capsys):
    """A destination whose parent cannot hold directories (a file: fails for root too)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    assert main(["export", str(ckpt), "--out", str(blocker / "art"), *FAST]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_output_that_is_a_file_is_refused(ckpt, tmp_path, capsys):
    target = tmp_path / "art"
    target.write_text("x")
    assert main(["export", str(ckpt), "--out", str(target), *FAST]) == 2
    assert "exists" in capsys.readouterr().err and target.read_text() == "x"


def test_tensorrt_missing_is_a_clear_device_error(tmp_path):
    from llara_edge.backends.trt_build import build_engine, tensorrt_status

    if tensorrt_status()["available"]:
        pytest.skip("tensorrt installed: engine builds are checked on the target")
    with pytest.raises(DeviceError, match="tensorrt not installed"):
        build_engine(tmp_path / "vision.onnx", tmp_path / "cache")


def test_tensorrt_profiles_cover_every_dynamic_input_of_the_exported_graphs(exported):
    """The profile build_engine gives TensorRT, from the ONNX graphs' real input shapes."""
    import onnx

    from llara_edge.backends.trt_build import default_shapes

    _, out, *_ = exported
    for name in ("vision.onnx", "llm.onnx", "embed.onnx"):
        graph = onnx.load(str(out / name), load_external_data=False).graph
        inputs = {i.name: tuple(d.dim_value if d.HasField("dim_value") else -1
                                for d in i.type.tensor_type.shape.dim) for i in graph.input}
        shapes = default_shapes(inputs, frame_hw=(240, 320), max_context=512)
        assert set(shapes) == {n for n, s in inputs.items() if -1 in s} == set(inputs)
        for input_name, (low, opt, high) in shapes.items():
            static = [d for d in inputs[input_name] if d != -1]
            assert all(a <= b <= c for a, b, c in zip(low, opt, high, strict=True))
            assert [d for d, s in zip(high, inputs[input_name], strict=True) if s != -1] == static
    assert shapes["input_ids"] == ((1, 1), (1, 1), (1, 512))


def test_random_llava_hf_model_exports_and_passes_parity(tmp_path, tok_dir):
    src = random_llava_hf(tok_dir, tmp_path / "hf", TINY.vocab_size, llm_hidden=128,
                          max_positions=512)
    out = tmp_path / "art"
    assert main(["export", str(src), "--out", str(out), "--quant", "q8_0", *FAST]) == 0
    manifest = load_manifest(out)
    assert manifest["source"]["layout"] == "llava-hf"
    rows = {r["name"]: r for r in manifest["parity"]["results"]}
    assert rows["f16"]["answer_agreement"] == 1 and rows["onnx"]["answer_agreement"] == 1
    assert set(manifest["files"]) >= ONNX_FILES
