"""A Backend over graph runners with an explicit KV cache held as arrays (ONNX, TensorRT).

Contract (the graph contract of the artifact's embed.onnx / llm.onnx / vision.onnx):
    runner(feeds: dict[str, ndarray]) -> dict[str, ndarray]; runner.inputs / runner.outputs:
    {name: (shape with ints or None for dynamic axes, numpy dtype)}
    embed:  input_ids int64 [1, T] -> inputs_embeds [1, T, hidden]
    llm:    inputs_embeds [1, T, hidden], position_ids int64 [1, T],
            past_key_values.{i}.key / .value [1, kv_heads, P, head_dim]
            -> logits [1, T, vocab], present.{i}.key / .value [1, kv_heads, P + T, head_dim]
    vision: frame uint8 [H, W, 3] -> image_embeds [N, hidden]
KVCacheBackend(embed, llm, vision, n_ctx) implements base.Backend: a prefill concatenates
all its segments (ids embedded by `embed`) into ONE llm run; extend embeds k ids and runs
once; the cache is the list of `present` arrays, rolled back by slicing axis 2 (a copy, so
the next run gets C-contiguous inputs). Positions are P .. P + T - 1.
"""

from __future__ import annotations

import re
from typing import Protocol

import numpy as np

from llara_edge.backends.base import Backend, Part, check_frame
from llara_edge.errors import ArtifactError

_PAST_RE = re.compile(r"^past_key_values\.(\d+)\.key$")
Spec = tuple[tuple[object, ...], np.dtype]


class Runner(Protocol):
    inputs: dict[str, Spec]
    outputs: dict[str, Spec]

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def past_names(i: int) -> tuple[str, str]:
    return f"past_key_values.{i}.key", f"past_key_values.{i}.value"


def present_names(i: int) -> tuple[str, str]:
    return f"present.{i}.key", f"present.{i}.value"


def _static(value: object, what: str) -> int:
    if not isinstance(value, int):
        raise ArtifactError(f"{what} must be a fixed dimension in the graph, got {value!r}")
    return value


class KVCacheBackend(Backend):
    """embed + llm (+ vision) runners, KV cache kept as NumPy arrays between runs."""

    def __init__(self, embed: Runner, llm: Runner, vision: Runner | None, n_ctx: int):
        self.embed, self.llm, self.vision = embed, llm, vision
        layers = sorted(int(m.group(1)) for n in llm.inputs if (m := _PAST_RE.match(n)))
        if not layers or layers != list(range(len(layers))):
            raise ArtifactError(f"llm graph has no consecutive KV-cache inputs: {layers}")
        shape, self._kv_dtype = llm.inputs[past_names(0)[0]]
        self._kv_shape = (1, _static(shape[1], "kv_heads"), 0, _static(shape[3], "head_dim"))
        self.n_layers = len(layers)
        self.hidden_size = _static(llm.inputs["inputs_embeds"][0][2], "hidden")
        self.n_vocab = _static(llm.outputs["logits"][0][2], "vocab")
        self._embeds_dtype = llm.inputs["inputs_embeds"][1]
        self.n_ctx = n_ctx
        self._past: list[np.ndarray] = []
        self._clear()

    @property
    def n_past(self) -> int:
        return self._past[0].shape[2]

    def _clear(self) -> None:
        empty = np.zeros(self._kv_shape, dtype=self._kv_dtype)
        self._past = [empty] * (2 * self.n_layers)

    def _truncate(self, n_keep: int) -> None:
        self._past = [np.ascontiguousarray(a[:, :, :n_keep]) for a in self._past]

    def embed_ids(self, ids: list[int]) -> np.ndarray:
        out = self.embed({"input_ids": np.asarray([ids], dtype=np.int64)})["inputs_embeds"]
        return out[0]

    def _run(self, embeds: np.ndarray) -> np.ndarray:
        """Append (T, hidden) embeddings; logits (T, vocab) float32."""
        p, t = self.n_past, embeds.shape[0]
        feeds = {"inputs_embeds": np.ascontiguousarray(embeds[None], dtype=self._embeds_dtype),
                 "position_ids": np.arange(p, p + t, dtype=np.int64)[None]}
        for i in range(self.n_layers):
            feeds.update(zip(past_names(i), self._past[2 * i : 2 * i + 2], strict=True))
        out = self.llm(feeds)
        self._past = [out[name] for i in range(self.n_layers) for name in present_names(i)]
        return np.asarray(out["logits"][0], dtype=np.float32)

    def _prefill(self, parts: list[Part]) -> np.ndarray:
        pieces = [p if isinstance(p, np.ndarray) else self.embed_ids(p) for p in parts]
        return self._run(np.concatenate(pieces) if len(pieces) > 1 else pieces[0])[-1]

    def _extend(self, ids: list[int]) -> np.ndarray:
        return self._run(self.embed_ids(ids))

    def close(self) -> None:
        self.embed = self.llm = self.vision = None  # sessions / engines go with them
        self._past = [np.zeros(self._kv_shape, dtype=self._kv_dtype)] * (2 * self.n_layers)

    def encode_image(self, frame: np.ndarray) -> np.ndarray:
        if self.vision is None:
            raise ArtifactError("this backend was loaded without a vision graph")
        out = self.vision({"frame": check_frame(frame)})["image_embeds"]
        return np.asarray(out, dtype=np.float32)
