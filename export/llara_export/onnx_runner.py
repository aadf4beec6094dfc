"""Run the exported ONNX graphs with onnxruntime (CPU EP), for the export's parity gate.

Contract:
    runner = OnnxRunner(directory, threads=1)
    runner.encode_image(rgb (H, W, 3) uint8) -> np.ndarray float32 (N, hidden)   # vision.onnx
    runner.prefill(embeds (T, hidden), past) -> (logits (T, vocab), past)        # llm.onnx
    runner.generate(prompt_ids, image_embeds, max_new_tokens, eos_id)
        -> (logits after the prompt (vocab,), greedy new ids)
    features = OnnxFeaturesRunner(directory, threads=1)
    features.encode_image(rgb) -> (N, hidden)      # vision_features.onnx + fused projector
    load_projector(path) -> (ProjectorWeights, drop)

`past` is a list of (key, value) arrays per layer, [1, kv_heads, P, head_dim]; empty() gives
P = 0. `generate` takes LLaVA prompt ids (IMAGE_TOKEN_INDEX placeholders) and prefills the
prompt in two chunks (split in the middle, so the KV-cache inputs are exercised with P > 0
on the second call), then decodes greedily one token per call (ties -> lowest id, as torch).
A missing or corrupt graph is an ArtifactError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llara_edge.decoding.constrained_decode import decode_greedy
from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.formats.templates import IMAGE_TOKEN_INDEX
from llara_export.onnx_common import ONNX_FILES, ort_session, past_names, present_names


def load_projector(path: str | Path):
    """projector.safetensors -> (kernels.projector.ProjectorWeights, drop)."""
    from safetensors import SafetensorError, safe_open

    from llara_kernels.projector import ProjectorWeights

    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            arrays = {k: fh.get_tensor(k) for k in ("w1", "b1", "w2", "b2")}
    except (OSError, SafetensorError, KeyError) as err:
        raise ArtifactError(f"unreadable projector weights {path}: {err}") from err
    try:
        return ProjectorWeights(**arrays), int(meta.get("drop", "1"))
    except (ConfigError, ValueError) as err:
        raise ArtifactError(f"inconsistent projector weights in {path}: {err}") from err


def _frame(rgb: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ConfigError(f"expected an (H, W, 3) uint8 frame, got {arr.shape} {arr.dtype}")
    return arr


class OnnxRunner:
    """vision.onnx + embed.onnx + llm.onnx over one sequence."""

    def __init__(self, directory: str | Path, threads: int = 1):
        directory = Path(directory)
        self.vision = ort_session(directory / ONNX_FILES["vision"], threads)
        self.embed = ort_session(directory / ONNX_FILES["embed"], threads)
        self.llm = ort_session(directory / ONNX_FILES["llm"], threads)
        shapes = {i.name: i.shape for i in self.llm.get_inputs()}
        self.n_layers = sum(1 for name in shapes if name.endswith(".key"))
        if self.n_layers == 0 or past_names(0)[0] not in shapes:
            raise ArtifactError(f"{directory / ONNX_FILES['llm']} has no KV-cache inputs")
        _, self.kv_heads, _, self.head_dim = shapes[past_names(0)[0]]
        self.outputs = ["logits"] + [n for i in range(self.n_layers) for n in present_names(i)]

    def empty(self) -> list[tuple[np.ndarray, np.ndarray]]:
        zero = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=np.float32)
        return [(zero, zero)] * self.n_layers

    def encode_image(self, rgb: np.ndarray) -> np.ndarray:
        return self.vision.run(None, {"frame": _frame(rgb)})[0]

    def embed_ids(self, ids: list[int]) -> np.ndarray:
        """(len(ids), hidden) input embeddings."""
        return self.embed.run(None, {"input_ids": np.asarray([ids], dtype=np.int64)})[0][0]

    def prefill(self, embeds: np.ndarray, past: list) -> tuple[np.ndarray, list]:
        """Append (T, hidden) embeddings after `past`; logits (T, vocab) and the new past."""
        n_past = past[0][0].shape[2]
        feed = {"inputs_embeds": np.ascontiguousarray(embeds[None], dtype=np.float32),
                "position_ids": np.arange(n_past, n_past + len(embeds), dtype=np.int64)[None]}
        for i, (key, value) in enumerate(past):
            feed.update(dict(zip(past_names(i), (key, value), strict=True)))
        out = self.llm.run(self.outputs, feed)
        return out[0][0], [(out[1 + 2 * i], out[2 + 2 * i]) for i in range(self.n_layers)]

    def prompt_embeds(self, prompt_ids: list[int], image_embeds: np.ndarray) -> np.ndarray:
        """(L, hidden): text ids embedded, each IMAGE_TOKEN_INDEX replaced by image_embeds."""
        pieces, run = [], []
        for tok in prompt_ids:
            if tok == IMAGE_TOKEN_INDEX:
                if run:
                    pieces.append(self.embed_ids(run))
                pieces.append(np.asarray(image_embeds, dtype=np.float32))
                run = []
            else:
                run.append(int(tok))
        if run:
            pieces.append(self.embed_ids(run))
        return np.concatenate(pieces)

    def generate(self, prompt_ids: list[int], image_embeds: np.ndarray, max_new_tokens: int,
                 eos_id: int) -> tuple[np.ndarray, list[int]]:
        embeds = self.prompt_embeds(prompt_ids, image_embeds)
        cut = max(1, len(embeds) // 2)
        logits, past = self.prefill(embeds[:cut], self.empty())
        if cut < len(embeds):
            logits, past = self.prefill(embeds[cut:], past)

        def extend(ids: list[int]) -> np.ndarray:
            nonlocal past
            out, past = self.prefill(self.embed_ids(ids), past)
            return out

        result = decode_greedy(extend, logits[-1], eos_id, max_new_tokens)
        return logits[-1], result.tokens


class OnnxVisionRunner:
    """vision.onnx alone: frame -> image embeddings (an export without the ONNX LLM)."""

    def __init__(self, directory: str | Path, threads: int = 1):
        self.vision = ort_session(Path(directory) / ONNX_FILES["vision"], threads)

    def encode_image(self, rgb: np.ndarray) -> np.ndarray:
        return self.vision.run(None, {"frame": _frame(rgb)})[0]


class OnnxFeaturesRunner:
    """vision_features.onnx + the CPU fused projector (kernels/llara_kernels/projector.py)."""

    def __init__(self, directory: str | Path, threads: int = 1):
        directory = Path(directory)
        self.features = ort_session(directory / ONNX_FILES["vision_features"], threads)
        self.weights, self.drop = load_projector(directory / ONNX_FILES["projector"])

    def encode_image(self, rgb: np.ndarray) -> np.ndarray:
        from llara_kernels.projector import project

        feats = self.features.run(None, {"frame": _frame(rgb)})[0]
        out = np.empty((feats.shape[0] - self.drop, self.weights.dims[2]), dtype=np.float32)
        return project(feats, self.weights, out, drop=self.drop)
