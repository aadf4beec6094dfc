"""An export directory opened by the runtime: manifest fields, and files verified on use.

Contract:
    art = Artifact.open(root)        # ArtifactError: no / unreadable / unknown-version /
                                     # wrong-shaped manifest (runtime/manifest_schema.py)
    art.file(name) -> Path           # checked against the manifest (listed, present, size,
                                     # sha256) the first time it is asked for; ArtifactError
                                     # naming the file otherwise
    art.has(name) -> bool            # listed in the manifest
    art.manifest_sha256              # sha256 of manifest.json (names the exact export)
    art.gguf(variant) -> Path        # the LLM GGUF of a quantisation variant (verified)
    art.onnx(role) -> Path           # ONNX graph / weights of a role ("vision",
                                     # "vision_features", "projector", "embed", "llm"),
                                     # its external-data file verified too; has_onnx(role)
    art.policy_format, art.template, art.preprocess (PreprocessConfig), art.drop_cls,
    art.answer_forms                 # ("numbered", ...) the training answers had; None: unknown
    art.prompt_variant               # the format's prompt variant it was trained on; None
    art.tokenizer(variant=None)      # GgufTokenizer over the artifact's GGUF vocabulary

Only the files a policy uses are hashed (a 7B export holds several multi-GB GGUF variants;
hashing all of them would dominate the cold start). The manifest format and the hash
function are export.manifest's, the one definition of both.
"""

from __future__ import annotations

from pathlib import Path

from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.formats.llara import ANSWER_FORMS, check_answer_forms
from llara_edge.models.preprocess import PreprocessConfig
from llara_edge.runtime.manifest import check_file, read_manifest, sha256_file

_DROP = {"patch": 1, "cls_patch": 0}  # rows of CLIP features dropped before the projector
# ONNX role -> file name when the manifest has no "onnx" table (the exporter's fixed names)
ONNX_NAMES = {"vision": "vision.onnx", "vision_features": "vision_features.onnx",
              "projector": "projector.safetensors", "embed": "embed.onnx", "llm": "llm.onnx"}


class Artifact:
    """A verified-on-use view of an export directory."""

    def __init__(self, root: Path, manifest: dict, manifest_sha256: str = ""):
        self.root, self.manifest = root, manifest
        self.manifest_sha256 = manifest_sha256  # of manifest.json itself, as `verify` prints
        self._verified: dict[str, Path] = {}

    @classmethod
    def open(cls, root: str | Path) -> Artifact:
        manifest, path = read_manifest(root)  # shape-checked: files, llm, onnx are typed
        return cls(Path(root), manifest, sha256_file(path))

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    def file(self, name: str) -> Path:
        """The path of `name` after checking it against the manifest (once per Artifact)."""
        if name in self._verified:
            return self._verified[name]
        entry = self.manifest["files"].get(name)
        target = self.root / name
        if entry is None:
            raise ArtifactError(f"artifact file {name} is not listed in the manifest of "
                                f"{self.root}")
        check_file(target, entry)
        self._verified[name] = target
        return target

    def gguf(self, variant: str) -> Path:
        table = self.manifest.get("llm") or {}
        if variant not in table:
            raise ConfigError(f"GGUF variant {variant!r} not in this artifact; "
                              f"exported: {sorted(table)}")
        return self.file(table[variant]["file"])

    def _onnx_name(self, role: str) -> str:
        table = self.manifest.get("onnx") or {}
        if role not in ONNX_NAMES:
            raise ConfigError(f"unknown ONNX role {role!r}; known: {sorted(ONNX_NAMES)}")
        return str(table.get(role, ONNX_NAMES[role]))

    def has_onnx(self, role: str) -> bool:
        return self.has(self._onnx_name(role))

    def onnx(self, role: str) -> Path:
        """The verified file of an ONNX role, after its external weights (NAME.data) if any."""
        name = self._onnx_name(role)
        external = (self.manifest.get("onnx") or {}).get("external_data") or []
        for data in external:
            if data == f"{name}.data":
                self.file(data)
        return self.file(name)

    def _field(self, key: str) -> object:
        if key not in self.manifest:
            raise ArtifactError(f"manifest of {self.root} has no {key!r}")
        return self.manifest[key]

    @property
    def policy_format(self) -> str:
        return str(self._field("policy_format"))

    @property
    def template(self) -> str:
        return str(self._field("template"))

    @property
    def answer_forms(self) -> tuple[str, ...] | None:
        """The "Step k: " header forms of the checkpoint's training answers (a non-empty
        subset of formats.llara.ANSWER_FORMS), None when the manifest records none."""
        forms = self.manifest.get("answer_forms")
        if forms is None:
            return None
        try:
            return tuple(check_answer_forms(forms))
        except ConfigError as err:
            raise ArtifactError(f"manifest of {self.root}: answer_forms must be a non-empty "
                                f"list from {list(ANSWER_FORMS)}, got {forms!r}") from err

    @property
    def prompt_variant(self) -> str | None:
        """The prompt variant of the policy format the checkpoint was trained on, or None."""
        variant = self.manifest.get("prompt_variant")
        return None if variant is None else str(variant)

    @property
    def preprocess(self) -> PreprocessConfig:
        d = self._field("preprocess")
        try:
            return PreprocessConfig(image_size=d["image_size"], shortest_edge=d["shortest_edge"],
                                    mean=tuple(d["mean"]), std=tuple(d["std"]),
                                    aspect_ratio=d["aspect_ratio"])
        except ConfigError as err:  # the fields are there (manifest_schema); values wrong
            raise ArtifactError(f"bad preprocess entry in the manifest of {self.root}: "
                                f"{err}") from err

    @property
    def drop_cls(self) -> int:
        """Leading rows of the CLIP features that the projector skips (1: LLaVA "patch")."""
        feature = (self.manifest.get("multimodal") or {}).get("select_feature", "patch")
        if feature not in _DROP:
            raise ArtifactError(f"unknown select_feature {feature!r} in {self.root}")
        return _DROP[feature]

    def tokenizer(self, variant: str | None = None):
        """The artifact's tokenizer: GgufTokenizer over a GGUF vocabulary (read by llama.cpp, as
        the gguf engine tokenises): the manifest's "tokenizer" when it names a .gguf, else the
        LLM GGUF of `variant`, else the smallest LLM GGUF listed (every variant holds the same
        vocabulary; the smallest is the cheapest to verify). The robot has no sentencepiece:
        tokenizer.model is the export's reference, never the runtime's."""
        from llara_edge.models.gguf_tokenizer import GgufTokenizer

        name = str(self.manifest.get("tokenizer", ""))
        return GgufTokenizer(self._vocab_gguf(name, variant))

    def _vocab_gguf(self, name: str, variant: str | None) -> Path:
        if name.endswith(".gguf"):
            return self.file(name)
        table = self.manifest.get("llm") or {}
        if variant in table:
            return self.gguf(variant)
        files = [e["file"] for e in table.values()]
        files = [f for f in files if self.has(f)]
        if not files:
            raise ArtifactError(f"artifact {self.root} has no GGUF vocabulary (neither a "
                                "tokenizer .gguf nor an LLM GGUF is listed in its manifest): "
                                "re-export it with a current llara-edge export")
        sizes = {f: self.manifest["files"][f]["size"] for f in files}
        return self.file(min(files, key=lambda f: (sizes[f], f)))
