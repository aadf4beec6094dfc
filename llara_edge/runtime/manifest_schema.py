"""The shape of manifest.json, declared once and checked on every read (export.manifest).

Contract:
    problems(manifest) -> list[str]   # every wrong shape, each naming its field:
                                      # 'files: expected an object of name -> {sha256, size},
                                      # got int'; [] for a well-formed manifest
    SCHEMA                            # the declaration below: what export/pipeline.py writes

Strict where the exporter writes a fixed set of names: an unknown top-level key (or one
inside `files` entries, `llm` variants, `mmproj`, `preprocess`, `multimodal`, `source`,
`tensorrt`, `onnx`) is a problem naming the nearest valid one. Open where the content is a
report the runtime does not read (`parity`, `tools`, `llm.*.tensor_types`,
`onnx.preprocess_error`). Values only: hashes are export.manifest.check_file's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from llara_edge.names import did_you_mean

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _got(value) -> str:
    """JSON type name of a parsed value."""
    return {type(None): "null", bool: "bool", int: "int", float: "float", str: "str",
            list: "list", dict: "object"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Value:
    """A scalar: "str", "int" (>= 0 with `minimum=0`), "number", "bool", "sha256", "any";
    `null` allows JSON null."""

    kind: str
    null: bool = False
    minimum: int | None = None

    def what(self) -> str:
        text = {"str": "a string", "int": "an integer", "number": "a number",
                "bool": "true or false", "sha256": "a sha256 (64 lowercase hex digits)",
                "any": "any value"}[self.kind]
        if self.minimum is not None:
            text += f" >= {self.minimum}"
        return text + (" or null" if self.null else "")

    def check(self, value, path: str, out: list[str]) -> None:
        if self.kind == "any" or (value is None and self.null):
            return
        ok = {"str": isinstance(value, str), "sha256": isinstance(value, str),
              "bool": isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool)}
        if not ok[self.kind] or (self.kind == "sha256" and not _SHA256.match(value)) or (
                self.minimum is not None and value < self.minimum):
            shown = f"{_got(value)} {value!r}" if ok[self.kind] else _got(value)
            out.append(f"{path}: expected {self.what()}, got {shown}")


@dataclass(frozen=True)
class List:
    item: Value
    length: int | None = None

    def what(self) -> str:
        count = f"{self.length} " if self.length is not None else ""
        return f"a list of {count}{self.item.what().removeprefix('a ').removeprefix('an ')}s"

    def check(self, value, path: str, out: list[str]) -> None:
        if not isinstance(value, list) or (self.length is not None and
                                           len(value) != self.length):
            got = f"a list of {len(value)}" if isinstance(value, list) else _got(value)
            out.append(f"{path}: expected {self.what()}, got {got}")
            return
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]", out)


@dataclass(frozen=True)
class Obj:
    """An object with named fields (`required` ones must be there); `open`: other names pass."""

    fields: dict = field(default_factory=dict)  # name -> Value | List | Obj | Map
    required: tuple[str, ...] = ()
    open: bool = False
    text: str = "an object"

    def what(self) -> str:
        return self.text

    def check(self, value, path: str, out: list[str]) -> None:
        if not isinstance(value, dict):
            out.append(f"{path}: expected {self.what()}, got {_got(value)}" if path else
                       f"expected a JSON object at the top level, got {_got(value)}")
            return
        prefix = f"{path}." if path else ""
        for name in self.required:
            if name not in value:
                out.append(f"{prefix}{name}: required key is missing")
        for name, item in value.items():
            if name in self.fields:
                self.fields[name].check(item, f"{prefix}{name}", out)
            elif not self.open:
                out.append(f"{prefix}{name}: unknown key; {did_you_mean(name, self.fields)}")


@dataclass(frozen=True)
class Map:
    """An object of arbitrary names, each value of one shape; `names`: file names."""

    value: Value | Obj
    text: str
    names: bool = False

    def what(self) -> str:
        return self.text

    def check(self, value, path: str, out: list[str]) -> None:
        if not isinstance(value, dict):
            out.append(f"{path}: expected {self.what()}, got {_got(value)}")
            return
        for name, item in value.items():
            where = f'{path}["{name}"]'
            pure = PurePosixPath(name)
            if self.names and (not name or pure.is_absolute() or ".." in pure.parts
                               or "\\" in name):
                out.append(f"{where}: not a relative path inside the export directory")
            self.value.check(item, where, out)


STR, INT, NUMBER, BOOL = Value("str"), Value("int"), Value("number"), Value("bool")
FILE_ENTRY = Obj({"sha256": Value("sha256"), "size": Value("int", minimum=0)},
                 required=("sha256", "size"), text="an object {sha256, size}")
LLM_VARIANT = Obj({"file": STR, "tensor_types": Map(Value("any"), "an object"), "note": STR},
                  required=("file",), text="an object {file, tensor_types}")
ONNX_ROLES = ("vision", "vision_features", "projector", "embed", "llm")  # -> file name
ONNX_INTS = ("opset", "image_tokens", "drop", "kept_blocks", "vision_hidden", "hidden",
             "vocab", "layers", "kv_heads", "head_dim")

SCHEMA = Obj(required=("manifest_version", "files"), text="a JSON object", fields={
    "manifest_version": INT,
    "files": Map(FILE_ENTRY, "an object of name -> {sha256, size}", names=True),
    "source": Obj({"checkpoint": STR, "layout": STR, "clip_dir": Value("str", null=True),
                   "sha256": STR}),
    "policy_format": STR,
    "template": STR,
    # what the checkpoint's training data wrote (export/llara_export/text_formats.py): the
    # answer forms (formats.llara.ANSWER_FORMS) and the format's prompt variant
    "answer_forms": List(STR),
    "prompt_variant": STR,
    "preprocess": Obj({"image_size": INT, "shortest_edge": INT, "mean": List(NUMBER, 3),
                       "std": List(NUMBER, 3), "aspect_ratio": STR},
                      required=("image_size", "shortest_edge", "mean", "std", "aspect_ratio")),
    "multimodal": Obj({"select_layer": INT, "select_feature": STR, "projector_type": STR}),
    "formats": List(STR),
    "llm": Map(LLM_VARIANT, "an object of variant -> {file, tensor_types}"),
    "mmproj": Obj({"file": STR}, required=("file",)),
    "onnx": Obj({**dict.fromkeys(ONNX_ROLES, STR), **dict.fromkeys(ONNX_INTS, INT),
                 "external_data": List(STR), "onnx_version": STR, "onnxruntime_version": STR,
                 "preprocess_error": Obj(open=True)}),
    "tokenizer": STR,
    "tensorrt": Obj({"available": BOOL, "version": Value("str", null=True), "reason": STR}),
    "tools": Map(STR, "an object of tool -> version"),
    "parity": Obj(open=True),
})


def problems(manifest) -> list[str]:
    """Every wrong shape of a parsed manifest.json (module docstring)."""
    out: list[str] = []
    SCHEMA.check(manifest, "", out)
    return out
