"""The "torch" backend and vision engine: the reference model behind the Backend interface.

Contract:
    TorchBackend(reference: torch_ref.TorchReferenceBackend, n_ctx)   # a base.Backend
    TorchBackend.from_artifact(artifact, config)
    TorchVision (vision engine "torch"): preprocess (LLaRA's PIL/NumPy path) -> CLIP up to the
        select layer -> mm_projector, each stage timed

The reference is the artifact's SOURCE checkpoint (config.checkpoint, else the manifest's
source path; CLIP directory from the manifest), loaded in float32 on CPU. Its weight,
config and tokenizer files must hash to the manifest's source sha256: an artifact is
compared only with the checkpoint it was exported from (ArtifactError otherwise).
Inputs and outputs are NumPy (float32); torch.set_num_threads(config.n_threads).
When the LLM is "torch" too, the vision engine shares the backend's model.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from llara_edge.backends.base import (
    Backend,
    Part,
    VisionEngine,
    check_frame,
    register_backend,
    register_vision,
)
from llara_edge.errors import ArtifactError
from llara_export.models.llava import SELECT_FEATURES
from llara_export.torch_ref import TorchReferenceBackend


def load_reference(artifact, config) -> TorchReferenceBackend:
    """The source checkpoint of `artifact`, verified against the manifest's source hash."""
    from llara_export.manifest import source_hash
    from llara_export.models.checkpoint import load_checkpoint

    source = artifact.manifest.get("source") or {}
    path = config.checkpoint or source.get("checkpoint")
    if not path:
        raise ArtifactError(f"the manifest of {artifact.root} names no source checkpoint")
    torch.set_num_threads(config.n_threads)
    clip_dir = None if config.checkpoint else source.get("clip_dir")
    model, tok, info = load_checkpoint(path, clip_dir, torch.float32)
    digest = source_hash([*info.weight_files, info.path / "config.json", tok.model_file])
    if source.get("sha256") and digest != source["sha256"]:
        raise ArtifactError(f"checkpoint {path} is not the source of {artifact.root} (its "
                            "files changed since the export)")
    return TorchReferenceBackend(model, tok, info.preprocess)


@register_backend("torch")
class TorchBackend(Backend):
    """Adapter: NumPy in/out over TorchReferenceBackend's KV-cache primitives."""

    def __init__(self, reference: TorchReferenceBackend, n_ctx: int):
        self.ref = reference
        cfg = reference.model.llama_config
        self.n_vocab = reference.model.llm.get_output_embeddings().out_features
        self.hidden_size = cfg.hidden_size
        self.n_ctx = min(n_ctx, cfg.max_position_embeddings)

    @classmethod
    def from_artifact(cls, artifact, config) -> TorchBackend:
        return cls(load_reference(artifact, config), config.n_ctx)

    @property
    def n_past(self) -> int:
        return self.ref.n_past

    def encode_image(self, frame: np.ndarray) -> np.ndarray:
        return self.ref.encode_image(check_frame(frame)).float().numpy()

    def _prefill(self, parts: list[Part]) -> np.ndarray:
        segs = [torch.from_numpy(p) if isinstance(p, np.ndarray) else p for p in parts]
        return self.ref.prefill(segs).float().numpy()

    def _extend(self, ids: list[int]) -> np.ndarray:
        return self.ref.extend(ids).float().numpy()

    def _truncate(self, n_keep: int) -> None:
        self.ref.rollback(self.ref.n_past - n_keep)

    def _clear(self) -> None:
        self.ref.reset()

    def close(self) -> None:
        self.ref.reset()  # the model itself is freed with the last reference to it


@register_vision("torch")
class TorchVision(VisionEngine):
    name = "torch"

    def __init__(self, reference: TorchReferenceBackend):
        self.ref = reference
        self.model = reference.model
        self.drop = SELECT_FEATURES[self.model.spec.select_feature]

    @classmethod
    def from_artifact(cls, artifact, config, backend: Backend) -> TorchVision:
        if isinstance(backend, TorchBackend):
            return cls(backend.ref)
        return cls(load_reference(artifact, config))

    @torch.inference_mode()
    def encode(self, frame: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        t0 = time.perf_counter()
        px = self.ref.pixel_values(check_frame(frame))  # (1, 3, S, S)
        t1 = time.perf_counter()
        out = self.model.vision_tower(px, output_hidden_states=True)
        feats = out.hidden_states[self.model.spec.select_layer][:, self.drop :]
        t2 = time.perf_counter()
        embeds = self.model.mm_projector(feats)[0].float().numpy()  # (N, hidden)
        t3 = time.perf_counter()
        timings["preprocess"] += t1 - t0
        timings["vision"] += t2 - t1
        timings["projector"] += t3 - t2
        return embeds

    def close(self) -> None:
        self.ref = self.model = None
