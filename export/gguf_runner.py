"""Run an exported LLM GGUF + mmproj GGUF with llama.cpp (llama-cpp-python), for parity.

Contract:
    runner = GgufRunner(llm_path, mmproj_path, n_ctx=2048, threads=1)
    runner.encode_image(rgb) -> np.ndarray float32 (N, hidden)   # mmproj through mtmd
    runner.generate(prompt_ids, image_embeds, max_new_tokens, eos_id)
        -> (logits after the prompt (vocab,), new ids)
    runner.close()
    stock_chat_answer(llm_path, mmproj_path, rgb, user_text, max_tokens) -> (text, rendered)

`encode_image` runs the mmproj through clip.cpp (its own pad + bicubic resize + normalise).
`generate` takes LLaVA prompt ids (IMAGE_TOKEN_INDEX placeholders, as the reference) and
injects the given image embeddings through llama_batch.embd, so the LLM GGUF is measured
on exactly the reference's inputs; decoding is plain greedy on llama_get_logits_ith(-1)
(no sampler), comparable token by token with the torch reference.

Known upstream defect (measured, see tests/test_export_gguf.py): the clip.cpp bundled with
llama-cpp-python 0.3.36 appends the CLS embedding after the patches but still gathers
output rows 1..N, so its LLaVA image features drop patch 0 and include CLS (and position
rows are shifted by one). The mmproj written here follows LLaVA/HF semantics; its parity
row shows the effect of that defect instead of hiding it.

`stock_chat_answer` goes through llama-cpp-python's unmodified `Llava15ChatHandler` and
`create_chat_completion` (temperature 0, top_k 1, no repeat penalty); `rendered` is the
prompt that handler's template builds (system message + "USER: <image>text ASSISTANT: "),
so the reference can be asked exactly the same question.
"""

from __future__ import annotations

import base64
import ctypes
import io
from pathlib import Path

import numpy as np

from llara_edge.errors import ArtifactError
from llara_edge.formats.templates import IMAGE_TAG_RE, IMAGE_TOKEN_INDEX
from llara_edge.kernels.constrained_decode import decode_greedy


def _quiet():
    from llama_cpp._utils import suppress_stdout_stderr

    return suppress_stdout_stderr(disable=False)


class GgufRunner:
    """One llama.cpp context + one mtmd context over a single sequence."""

    def __init__(self, llm_path: str | Path, mmproj_path: str | Path, n_ctx: int = 2048,
                 threads: int = 1):
        from llama_cpp import mtmd_cpp

        from llara_edge.llama_lib import load_llama_cpp

        llama_cpp = load_llama_cpp()

        self._lc, self._mtmd = llama_cpp, mtmd_cpp
        with _quiet():
            try:
                self.llama = llama_cpp.Llama(str(llm_path), n_ctx=n_ctx, n_batch=n_ctx,
                                             n_threads=threads, verbose=False)
            except ValueError as err:
                raise ArtifactError(f"llama.cpp cannot load {llm_path}: {err}") from err
            params = mtmd_cpp.mtmd_context_params_default()
            params.use_gpu = False
            params.print_timings = False
            params.n_threads = threads
            self.mtmd = mtmd_cpp.mtmd_init_from_file(str(mmproj_path).encode(),
                                                     self.llama.model, params)
        if not self.mtmd:
            self.llama.close()
            raise ArtifactError(f"llama.cpp's clip cannot load the mmproj {mmproj_path}")
        self.marker = mtmd_cpp.mtmd_default_marker().decode()

    def close(self) -> None:
        if self.mtmd:
            self._mtmd.mtmd_free(self.mtmd)
            self.mtmd = None
        self.llama.close()

    def _chunks(self, rgb: np.ndarray, prompt: str):
        """mtmd input chunks of `prompt` (one <image> tag) with the frame as bitmap."""
        m = self._mtmd
        frame = np.ascontiguousarray(rgb, dtype=np.uint8)
        data = (ctypes.c_uint8 * frame.size).from_buffer_copy(frame.tobytes())
        bitmap = m.mtmd_bitmap_init(frame.shape[1], frame.shape[0], data)
        text_bytes = IMAGE_TAG_RE.sub(self.marker, prompt).encode()
        text = m.mtmd_input_text()
        text.text, text.text_len = text_bytes, len(text_bytes)
        text.add_special, text.parse_special = True, False
        chunks = m.mtmd_input_chunks_init()
        try:
            rc = m.mtmd_tokenize(self.mtmd, chunks, ctypes.byref(text),
                                 (m.mtmd_bitmap_p_ctypes * 1)(bitmap), 1)
        finally:
            m.mtmd_bitmap_free(bitmap)
        if rc != 0:
            m.mtmd_input_chunks_free(chunks)
            raise ArtifactError(f"mtmd_tokenize failed with code {rc}")
        return chunks

    def encode_image(self, rgb: np.ndarray) -> np.ndarray:
        """Projected image embeddings (N, hidden) computed by clip.cpp from the mmproj."""
        with _quiet():
            return self._encode(rgb)

    def _encode(self, rgb: np.ndarray) -> np.ndarray:
        m = self._mtmd
        chunks = self._chunks(rgb, "<image>")
        try:
            for i in range(m.mtmd_input_chunks_size(chunks)):
                chunk = m.mtmd_input_chunks_get(chunks, i)
                if m.mtmd_input_chunk_get_type(chunk) == m.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                    n = m.mtmd_input_chunk_get_n_tokens(chunk)
                    if m.mtmd_encode_chunk(self.mtmd, chunk) != 0:
                        raise ArtifactError("mtmd_encode_chunk failed")
                    hidden = self._lc.llama_model_n_embd(self.llama.model)
                    out = m.mtmd_get_output_embd(self.mtmd)
                    flat = np.ctypeslib.as_array(out, shape=(n * hidden,))
                    return flat.reshape(n, hidden).copy()
            raise ArtifactError("mtmd produced no image chunk")
        finally:
            m.mtmd_input_chunks_free(chunks)

    def _last_logits(self) -> np.ndarray:
        n_vocab = self._lc.llama_vocab_n_tokens(self._lc.llama_model_get_vocab(self.llama.model))
        ptr = self._lc.llama_get_logits_ith(self.llama.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()

    def _decode(self, batch) -> None:
        if self._lc.llama_decode(self.llama.ctx, batch) != 0:
            raise ArtifactError("llama_decode failed (context full?)")

    def _feed_embeddings(self, embeds: np.ndarray) -> None:
        """Append (n, hidden) float32 embeddings at the next positions (batch.embd, no ids)."""
        lc = self._lc
        arr = np.ascontiguousarray(embeds, dtype=np.float32)
        batch = lc.llama_batch()
        batch.n_tokens = arr.shape[0]
        batch.embd = arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._decode(batch)

    def _feed_tokens(self, ids: list[int]) -> None:
        lc = self._lc
        arr = (lc.llama_token * len(ids))(*ids)
        self._decode(lc.llama_batch_get_one(arr, len(ids)))

    def generate(self, prompt_ids: list[int], image_embeds: np.ndarray, max_new_tokens: int,
                 eos_id: int) -> tuple[np.ndarray, list[int]]:
        """Greedy answer ids after `prompt_ids` (IMAGE_TOKEN_INDEX placeholders replaced by
        `image_embeds` (N, hidden)); also the logits after the prompt (vocab,)."""
        self._lc.llama_memory_clear(self._lc.llama_get_memory(self.llama.ctx), True)
        run: list[int] = []
        for tok in prompt_ids:
            if tok == IMAGE_TOKEN_INDEX:
                if run:
                    self._feed_tokens(run)
                run = []
                self._feed_embeddings(image_embeds)
            else:
                run.append(int(tok))
        if run:
            self._feed_tokens(run)
        first = self._last_logits()

        def extend(ids: list[int]) -> np.ndarray:
            self._feed_tokens(ids)
            return self._last_logits()

        return first, decode_greedy(extend, first, eos_id, max_new_tokens).tokens


def _data_url(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def stock_rendered_prompt(user_text: str) -> str:
    """The prompt Llava15ChatHandler builds for one user turn (image first), `<image>` tagged."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from llama_cpp.llama_chat_format import Llava15ChatHandler

    messages = [
        {"role": "system", "content": Llava15ChatHandler.DEFAULT_SYSTEM_MESSAGE},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "<image>"}},
                                     {"type": "text", "text": user_text}]},
    ]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(Llava15ChatHandler.CHAT_FORMAT).render(
        messages=messages, add_generation_prompt=True)


def stock_chat_answer(llm_path: str | Path, mmproj_path: str | Path, rgb: np.ndarray,
                      user_text: str, max_tokens: int, n_ctx: int = 2048) -> tuple[str, str]:
    """Greedy answer of the stock Llava15ChatHandler; (answer text, rendered prompt)."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Llava15ChatHandler

    from llara_edge.llama_lib import load_llama_cpp

    load_llama_cpp()
    text = IMAGE_TAG_RE.sub("", user_text).lstrip("\n")
    with _quiet():
        handler = Llava15ChatHandler(clip_model_path=str(mmproj_path), verbose=False)
        llm = Llama(str(llm_path), chat_handler=handler, n_ctx=n_ctx, n_threads=1,
                    verbose=False)
        try:
            out = llm.create_chat_completion(
                messages=[{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": _data_url(rgb)}},
                    {"type": "text", "text": text}]}],
                temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                max_tokens=max_tokens)
        finally:
            llm.close()
    return out["choices"][0]["message"]["content"] or "", stock_rendered_prompt(text)
