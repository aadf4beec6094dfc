"""llama-cpp-python's stock LLaVA-1.5 chat path over an export's GGUF files: a baseline.

Contract:
    stock_chat_answer(llm_gguf, mmproj_gguf, rgb, user_text, max_tokens, n_ctx=2048)
        -> (answer text, rendered prompt)
    stock_rendered_prompt(user_text) -> str   # the prompt the handler builds, `<image>` tagged
    data_url(rgb uint8 (H, W, 3)) -> str       # PNG data URL: how the handler takes an image

Not our engine (the runtime's is llara_edge.backends.gguf through llara_edge.llama): this is
what a user of llama-cpp-python gets with its unmodified `Llava15ChatHandler` and
`create_chat_completion` (temperature 0, top_k 1, no repeat penalty), through
llama-cpp-python's own high-level layer (Llama, the chat handler). `rendered` is the prompt
that handler's template builds (system message + "USER: <image>text ASSISTANT: "), so the torch
reference can be asked exactly the same question. Its image features come from the clip.cpp
bundled with llama-cpp-python 0.3.36, which drops patch 0 and keeps CLS for LLaVA projectors
(tests/test_export_gguf.py reproduces that output exactly). baselines.StockGbnfRunner is the
timed variant of the same path.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

from llara_edge.formats.templates import IMAGE_TAG_RE


def data_url(rgb: np.ndarray) -> str:
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


def stock_chat_answer(llm_gguf: str | Path, mmproj_gguf: str | Path, rgb: np.ndarray,
                      user_text: str, max_tokens: int, n_ctx: int = 2048) -> tuple[str, str]:
    """Greedy answer of the stock Llava15ChatHandler; (answer text, rendered prompt)."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Llava15ChatHandler

    from llara_edge.llama import load_llama_cpp, quiet

    load_llama_cpp()  # ggml's backends from the wheel before llama-cpp-python touches them
    text = IMAGE_TAG_RE.sub("", user_text).lstrip("\n")
    with quiet():
        handler = Llava15ChatHandler(clip_model_path=str(mmproj_gguf), verbose=False)
        llm = Llama(str(llm_gguf), chat_handler=handler, n_ctx=n_ctx, n_threads=1,
                    verbose=False)
        try:
            out = llm.create_chat_completion(
                messages=[{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": data_url(rgb)}},
                    {"type": "text", "text": text}]}],
                temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                max_tokens=max_tokens)
        finally:
            llm.close()
    return out["choices"][0]["message"]["content"] or "", stock_rendered_prompt(text)
