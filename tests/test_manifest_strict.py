"""manifest.json of the wrong shape: an ArtifactError naming the field, never a Python error.

Valid JSON of the wrong shape (`"files": 5`, no `files`, an entry without sha256, `"llm": []`,
an unknown key, ...) is refused by every reader (read_manifest, load_manifest, Artifact.open)
with the field's name, and `llara-edge verify` prints one line and exits 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llara_edge.errors import ArtifactError
from llara_edge.runtime.artifact import Artifact
from llara_export.manifest import (
    MANIFEST_NAME,
    file_entries,
    load_manifest,
    read_manifest,
    write_manifest,
)

LLARA_EDGE = str(Path(sys.executable).with_name("llara-edge"))
FILES = {"llm-f16.gguf": b"gguf" * 10, "mmproj-f16.gguf": b"mm" * 7, "vision.onnx": b"v" * 5,
         "tokenizer.model": b"tok"}


def full_manifest(root: Path) -> dict:
    """Every section export/pipeline.py writes (values of the right shape)."""
    return {
        "source": {"checkpoint": "/ckpt", "layout": "original", "clip_dir": None,
                   "sha256": "0" * 64},
        "policy_format": "llara", "template": "vicuna_v1",
        "answer_forms": ["numbered", "unnumbered"], "prompt_variant": "standard",
        "preprocess": {"image_size": 336, "shortest_edge": 336, "mean": [0.5, 0.5, 0.5],
                       "std": [0.25, 0.25, 0.25], "aspect_ratio": "pad"},
        "multimodal": {"select_layer": -2, "select_feature": "patch",
                       "projector_type": "mlp2x_gelu"},
        "formats": ["gguf", "onnx-vision"],
        "llm": {"f16": {"file": "llm-f16.gguf"},
                "q8_0": {"file": "llm-f16.gguf", "tensor_types": {"q8_0": 3}}},
        "mmproj": {"file": "mmproj-f16.gguf"},
        "onnx": {"vision": "vision.onnx", "vision_features": "vision_features.onnx",
                 "projector": "projector.safetensors", "external_data": [], "opset": 17,
                 "onnx_version": "1.17", "onnxruntime_version": "1.20", "image_tokens": 576,
                 "drop": 1, "kept_blocks": 23, "vision_hidden": 1024,
                 "preprocess_error": {"max_abs_lsb": 1.0, "mismatch_fraction": 0.01}},
        "tokenizer": "tokenizer.model",
        "tensorrt": {"available": False, "version": None, "reason": "not installed"},
        "tools": {"python": "3.11.7", "torch": "2.5"},
        "parity": {"frames": 1, "frame_size": [64, 48], "results": [{"name": "f16"}]},
        "files": file_entries(root, FILES),
    }


@pytest.fixture
def export_dir(tmp_path) -> Path:
    root = tmp_path / "art"
    root.mkdir()
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    write_manifest(root, full_manifest(root))
    return root


def rewrite(root: Path, change) -> None:
    """Apply `change(manifest) -> manifest` to the JSON on disk (bypassing write_manifest)."""
    path = root / MANIFEST_NAME
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def setting(*keys, value=None, drop=False):
    def change(manifest):
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        if drop:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        return manifest
    return change


CASES = {
    "files-int": (setting("files", value=5),
                  "files: expected an object of name -> {sha256, size}, got int"),
    "no-files": (setting("files", drop=True), "files: required key is missing"),
    "entry-no-sha": (setting("files", "vision.onnx", "sha256", drop=True),
                     'files["vision.onnx"].sha256: required key is missing'),
    "size-str": (setting("files", "vision.onnx", "size", value="5"),
                 'files["vision.onnx"].size: expected an integer >= 0, got str'),
    "size-float": (setting("files", "vision.onnx", "size", value=5.0),
                   'files["vision.onnx"].size: expected an integer >= 0, got float'),
    "size-negative": (setting("files", "vision.onnx", "size", value=-1),
                      'files["vision.onnx"].size: expected an integer >= 0, got int -1'),
    "entry-list": (setting("files", "vision.onnx", value=[1, 2]),
                   'files["vision.onnx"]: expected an object {sha256, size}, got list'),
    "sha-short": (setting("files", "vision.onnx", "sha256", value="abc"),
                  'files["vision.onnx"].sha256: expected a sha256 (64 lowercase hex digits), '
                  "got str 'abc'"),
    "entry-typo": (setting("files", "vision.onnx", "sha265", value="0" * 64),
                   'files["vision.onnx"].sha265: unknown key; did you mean sha256?'),
    "name-escapes": (setting("files", "../outside.bin", value={"sha256": "0" * 64, "size": 1}),
                     'files["../outside.bin"]: not a relative path inside the export'),
    "llm-list": (setting("llm", value=[]),
                 "llm: expected an object of variant -> {file, tensor_types}, got list"),
    "llm-no-file": (setting("llm", "f16", value={}), 'llm["f16"].file: required key is missing'),
    "preprocess-missing": (setting("preprocess", value={"image_size": 336}),
                           "preprocess.shortest_edge: required key is missing"),
    "preprocess-mean": (setting("preprocess", "mean", value=[0.5, 0.5]),
                        "preprocess.mean: expected a list of 3 numbers, got a list of 2"),
    "onnx-str": (setting("onnx", value="vision.onnx"), "onnx: expected an object, got str"),
    "onnx-role-int": (setting("onnx", "vision", value=5),
                      "onnx.vision: expected a string, got int"),
    "onnx-external-str": (setting("onnx", "external_data", value="llm.onnx.data"),
                          "onnx.external_data: expected a list of strings, got str"),
    "mmproj-typo": (setting("mmproj", value={"fil": "mmproj-f16.gguf"}),
                    "mmproj.fil: unknown key; did you mean file?"),
    "tensorrt-bool": (setting("tensorrt", "available", value="no"),
                      "tensorrt.available: expected true or false, got str"),
    "answer-forms-str": (setting("answer_forms", value="numbered"),
                         "answer_forms: expected a list of strings, got str"),
    "prompt-variant-list": (setting("prompt_variant", value=["standard"]),
                            "prompt_variant: expected a string, got list"),
    "answer-forms-typo": (setting("answer_form", value=["numbered"]),
                          "answer_form: unknown key; did you mean answer_forms?"),
    "unknown-top": (setting("polcy_format", value="llara"),
                    "polcy_format: unknown key; did you mean policy_format?"),
    "top-list": (lambda m: [m], "expected a JSON object at the top level, got list"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_wrong_shapes_are_artifact_errors_naming_the_field(export_dir, case):
    change, expected = CASES[case]
    rewrite(export_dir, change)
    for reader in (read_manifest, load_manifest, Artifact.open):
        with pytest.raises(ArtifactError) as info:
            reader(export_dir)
        message = str(info.value)
        assert message.startswith(f"{export_dir / MANIFEST_NAME}: "), message
        assert expected in message, (reader, message)


def test_the_well_formed_manifest_loads(export_dir):
    art = Artifact.open(export_dir)
    assert art.gguf("q8_0").name == "llm-f16.gguf" and art.preprocess.image_size == 336
    assert load_manifest(export_dir)["files"]["vision.onnx"]["size"] == 5
    assert art.answer_forms == ("numbered", "unnumbered") and art.prompt_variant == "standard"


def test_answer_forms_are_read_strictly(export_dir):
    """Absent: unknown (None); present: a non-empty list of known forms, in their order."""
    rewrite(export_dir, setting("answer_forms", value=["unnumbered", "numbered"]))
    assert Artifact.open(export_dir).answer_forms == ("numbered", "unnumbered")
    rewrite(export_dir, setting("answer_forms", drop=True))
    rewrite(export_dir, setting("prompt_variant", drop=True))
    art = Artifact.open(export_dir)
    assert art.answer_forms is None and art.prompt_variant is None
    for bad in ([], ["numbered", "roman"]):
        rewrite(export_dir, setting("answer_forms", value=bad))
        with pytest.raises(ArtifactError, match="answer_forms must be a non-empty list"):
            Artifact.open(export_dir).answer_forms  # noqa: B018


def test_every_problem_is_named_at_once(export_dir):
    def change(manifest):
        manifest["files"]["vision.onnx"].pop("sha256")
        manifest["llm"] = []
        manifest["onnx"]["vision"] = 5
        manifest["extra"] = 1
        return manifest

    rewrite(export_dir, change)
    with pytest.raises(ArtifactError) as info:
        read_manifest(export_dir)
    message = str(info.value)
    assert ": 4 problems: " in message and "\n" not in message
    for field in ('files["vision.onnx"].sha256', "llm:", "onnx.vision:", "extra:"):
        assert field in message


def test_write_manifest_refuses_a_wrong_shape(export_dir):
    before = (export_dir / MANIFEST_NAME).read_bytes()
    bad = {**full_manifest(export_dir), "llm": {"f16": {"fil": "llm-f16.gguf"}}}
    with pytest.raises(ArtifactError, match=r'llm\["f16"\].fil: unknown key; did you mean file'):
        write_manifest(export_dir, bad)
    assert (export_dir / MANIFEST_NAME).read_bytes() == before
    assert not list(export_dir.glob(".*tmp"))


def verify(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LLARA_EDGE, "verify", str(root)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("case", ["files-int", "no-files", "entry-no-sha", "size-str",
                                  "llm-list", "top-list", "unknown-top"])
def test_cli_verify_prints_one_line_and_exits_2(export_dir, case):
    change, expected = CASES[case]
    rewrite(export_dir, change)
    proc = verify(export_dir)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"llara-edge verify: error: {export_dir / MANIFEST_NAME}: ")
    assert expected in proc.stderr


def test_cli_verify_accepts_the_well_formed_manifest(export_dir):
    proc = verify(export_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("verify: ok: 4 files")

