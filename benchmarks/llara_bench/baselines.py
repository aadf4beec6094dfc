"""The two latency baselines of issue 5, as step runners over the same model and frames.

Contract (both are `benchmarks.runners.StepRunner`s):
    HfGenerateRunner(checkpoint_dir, threads, max_new_tokens=256)   # baseline (a)
    StockGbnfRunner(llm_gguf, mmproj_gguf, threads, max_new_tokens=256, n_ctx=2048)  # (b)
    runner.step(rgb, user_text) -> StepRecord; runner.close()
    vicuna_chat_format() -> str      # jinja CHAT_FORMAT rendering the vicuna_v1 prompt

(a) LLaRA's own path: the torch model (fp32 on CPU), LLaVA preprocessing, the CLIP tower with
all its layers (LLaVA's clip_encoder asks for every hidden state), the projector, then
transformers' `generate(inputs_embeds=..., do_sample=False, num_beams=1,
max_new_tokens=256)` until </s>, decode, parse the first step. The first-token time comes
from a generate streamer (the first call that carries one new token), so prefill and decode
are split without changing generate.
(b) llama-cpp-python's unmodified `Llava15ChatHandler` code path over the exported GGUF and
mmproj: image passed as a PNG data URL (its PNG encoding is this path's preprocessing),
`create_chat_completion(stream=True, temperature=0, top_k=1, grammar=GBNF of the LLaRA step
with the prompt's object names)`. The handler's CHAT_FORMAT is set to vicuna_v1 (a subclass
that changes only that class attribute) so the rendered prompt is byte-equal to the policy's;
its clip.cpp image features carry the upstream defect noted in
benchmarks/llara_bench/stock_llava.py. Both take optional logits processors
(`runner.logits_processor`, a list; the 7B-shaped mode's teacher,
benchmarks/llara_bench/teacher.py) passed to generate / create_chat_completion.
Both load once (outside the timed steps): steady-state control steps are compared, with
the same thread count as every other runner (Llama's n_threads_batch would otherwise
default to all cores).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from llara_bench.gbnf import llara_step_gbnf, prompt_names
from llara_bench.runners import StepRecord, parse_step, policy_prompt
from llara_edge.errors import ArtifactError
from llara_edge.formats.templates import IMAGE_TAG_RE, VICUNA_V1


def vicuna_chat_format() -> str:
    """Jinja of `system USER: <image>\\n{text} ASSISTANT:` (build_prompt(vicuna_v1, ...))."""
    return (
        "{% for message in messages %}"
        "{% if message.role == 'system' %}{{ message.content }}{{ ' ' }}{% endif %}"
        "{% if message.role == 'user' %}USER: "
        "{% for content in message.content %}{% if content.type == 'image_url' %}"
        "{{ content.image_url.url }}{{ '\\n' }}{% endif %}{% endfor %}"
        "{% for content in message.content %}{% if content.type == 'text' %}"
        "{{ content.text }}{% endif %}{% endfor %}{{ ' ' }}{% endif %}"
        "{% endfor %}ASSISTANT:"
    )


class _FirstTokenClock:
    """transformers streamer recording when the first new token arrives."""

    def __init__(self):
        self.first: float | None = None

    def put(self, value) -> None:
        if self.first is None and value.ndim == 1 and value.numel() == 1:
            self.first = time.perf_counter()

    def end(self) -> None:
        return None


class HfGenerateRunner:
    """Baseline (a): torch reference + HF greedy generate, staged."""

    name = "torch-hf-generate"

    def __init__(self, checkpoint: str | Path, threads: int, max_new_tokens: int = 256):
        import torch

        from llara_export.models.checkpoint import load_checkpoint

        torch.set_num_threads(threads)
        self._torch = torch
        self.model, self.tok, self.info = load_checkpoint(checkpoint)
        self.model.eval()
        self.max_new_tokens = max_new_tokens
        self.logits_processor: list | None = None  # transformers LogitsProcessors (a teacher)

    def close(self) -> None:
        self.model = None

    def _processors(self):
        from transformers import LogitsProcessorList

        return LogitsProcessorList(self.logits_processor or [])

    def step(self, rgb: np.ndarray, user_text: str) -> StepRecord:
        torch = self._torch
        from llara_edge.models.preprocess import preprocess_image
        from llara_export.models.llava import SELECT_FEATURES

        m, stages = self.model, {}
        t0 = time.perf_counter()
        ids = self.tok.tokenizer_image_token(policy_prompt(user_text))
        px = torch.from_numpy(preprocess_image(rgb, self.info.preprocess))[None]
        t1 = time.perf_counter()
        with torch.inference_mode():
            hidden = m.vision_tower(px, output_hidden_states=True).hidden_states
            feats = hidden[m.spec.select_layer][:, SELECT_FEATURES[m.spec.select_feature]:]
            t2 = time.perf_counter()
            feats = m.mm_projector(feats)
            t3 = time.perf_counter()
            embeds = m.embed(torch.tensor([ids]), feats)
            clock = _FirstTokenClock()
            out = m.llm.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2],
                                 dtype=torch.long), do_sample=False, num_beams=1,
                                 max_new_tokens=self.max_new_tokens, eos_token_id=self.tok.eos_id,
                                 pad_token_id=self.tok.eos_id, streamer=clock,
                                 logits_processor=self._processors())
        t4 = time.perf_counter()
        tokens = out[0].tolist()
        text = self.tok.decode(tokens).strip()
        first = clock.first or t4
        stages.update(preprocess=t1 - t0, vision=t2 - t1, projector=t3 - t2,
                      prefill=first - t3, decode=t4 - first)
        return parse_step(text, stages, t0, ttft_s=first - t0, n_tokens=len(tokens),
                          forward_passes=max(len(tokens) - 1, 0))


class StockGbnfRunner:
    """Baseline (b): llama-cpp-python's Llava15ChatHandler + llama.cpp GBNF sampling."""

    name = "stock-llava15-gbnf"

    def __init__(self, llm_gguf: str | Path, mmproj_gguf: str | Path, threads: int,
                 max_new_tokens: int = 256, n_ctx: int = 2048):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Llava15ChatHandler

        from llara_edge.llama import load_llama_cpp

        load_llama_cpp()

        class VicunaLlava15(Llava15ChatHandler):
            DEFAULT_SYSTEM_MESSAGE = VICUNA_V1.system
            CHAT_FORMAT = vicuna_chat_format()

        self.handler = VicunaLlava15(clip_model_path=str(mmproj_gguf), verbose=False)
        try:
            self.llm = Llama(str(llm_gguf), chat_handler=self.handler, n_ctx=n_ctx,
                             n_batch=n_ctx, n_threads=threads, n_threads_batch=threads,
                             verbose=False)
        except ValueError as err:
            raise ArtifactError(f"llama.cpp cannot load {llm_gguf}: {err}") from err
        self.max_new_tokens = max_new_tokens
        self.logits_processor: list | None = None  # llama-cpp-python processors (a teacher)
        self._grammars: dict[tuple[str, ...], object] = {}

    def close(self) -> None:
        self.llm.close()

    def _grammar(self, names: tuple[str, ...]):
        from llama_cpp import LlamaGrammar

        if names not in self._grammars:  # a user builds it once per task, not per step
            self._grammars[names] = LlamaGrammar.from_string(llara_step_gbnf(names or None),
                                                             verbose=False)
        return self._grammars[names]

    def step(self, rgb: np.ndarray, user_text: str) -> StepRecord:
        from llara_edge.llama import quiet

        # the handler's mtmd calls print ~10 lines per step from C even with verbose=False;
        # silenced outside the timed span (writing to /dev/null costs the baseline nothing)
        with quiet():
            return self._step(rgb, user_text)

    def _processors(self):
        from llama_cpp import LogitsProcessorList

        return LogitsProcessorList(self.logits_processor) if self.logits_processor else None

    def _step(self, rgb: np.ndarray, user_text: str) -> StepRecord:
        from llara_bench.stock_llava import data_url

        grammar = self._grammar(prompt_names(user_text))
        t0 = time.perf_counter()
        url = data_url(rgb)
        text_part = IMAGE_TAG_RE.sub("", user_text).lstrip("\n")
        t1 = time.perf_counter()
        chunks = self.llm.create_chat_completion(
            messages=[{"role": "system", "content": VICUNA_V1.system},
                      {"role": "user", "content": [
                          {"type": "image_url", "image_url": {"url": url}},
                          {"type": "text", "text": text_part}]}],
            temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
            max_tokens=self.max_new_tokens, grammar=grammar, stream=True,
            logits_processor=self._processors())
        pieces, first, n, finish = [], None, 0, None
        for chunk in chunks:
            content = chunk["choices"][0]["delta"].get("content")
            finish = chunk["choices"][0].get("finish_reason") or finish
            if content:
                first = first or time.perf_counter()
                pieces.append(content)
                n += 1
        t2 = time.perf_counter()
        first = first or t2
        stages = {"preprocess": t1 - t0, "vision+prefill": first - t1, "decode": t2 - first}
        # "stop": the grammar ended and </s> was sampled (not streamed): one more token and
        # the pass that computed it, as HF generate counts its </s>
        eos = int(finish == "stop")
        return parse_step("".join(pieces).strip(), stages, t0, ttft_s=first - t0,
                          n_tokens=n + eos, forward_passes=max(n - 1 + eos, 0))
