"""Runner specs: one short string names a backend/variant to benchmark, e.g. on the CLI.

Contract:
    spec = parse_spec("gguf:q4_k_m") -> RunnerSpec(kind, variant, vision, delay_s, text, ...)
    make_runner(spec, BenchContext(artifact, checkpoint, threads, max_new_tokens)) -> StepRunner
    RUNNER_KINDS: kind -> factory

Grammar: KIND[:VARIANT[:VISION]][+kv=TYPE][+free][+draft=N][+delay=SECONDS]
    gguf:q4_k_m[:onnx|onnx+fused|torch]   the runtime Policy, llama.cpp LLM (default vision onnx)
    onnx[:-:VISION]                       the runtime Policy, onnxruntime LLM
    torch                                 the runtime Policy on the torch reference engines
    gguf...+kv=q8_0                       the runtime Policy with RuntimeConfig.cache_type_k
                                          = TYPE (llama.cpp K cache; default f16)
    ...+free                              the runtime Policy decoding free greedy (no grammar,
                                          no jump forward; strict parser): `free_twin(spec)`
                                          names the candidate's twin on the same engines
    ...+draft=0                           the runtime Policy with RuntimeConfig.draft_tokens = N
                                          (0: no prompt-lookup speculation, the ablation)
    hf-generate                           baseline (a): torch + transformers generate
    stock-gbnf:q4_k_m                     baseline (b): stock Llava15ChatHandler + GBNF, that GGUF
    ...+delay=0.2                         the same runner slowed by 0.2 s per step (decode),
                                          a deliberately degraded variant for the gate tests
The spec string itself is the runner's name in every table and JSON key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llara_edge.errors import ConfigError

_SPEC_RE = re.compile(r"^(?P<kind>[a-z-]+)(?::(?P<variant>[\w-]+))?"
                      r"(?::(?P<vision>\w+(?:\+fused)?))?(?:\+kv=(?P<kv>\w+))?(?P<free>\+free)?"
                      r"(?:\+draft=(?P<draft>\d+))?"
                      r"(?:\+delay=(?P<delay>\d+(?:\.\d+)?))?$")
POLICY_LLMS = {"gguf": "gguf", "onnx": "onnx", "torch": "torch"}
DEFAULT_VISION = {"gguf": "onnx", "onnx": "onnx", "torch": "torch"}


@dataclass(frozen=True)
class RunnerSpec:
    kind: str
    variant: str | None
    vision: str | None
    delay_s: float
    text: str
    draft: int | None = None  # Policy runners: draft_tokens (None: the runtime default)
    free: bool = False  # Policy runners: free greedy instead of constrained decoding
    cache_type_k: str | None = None  # gguf Policy runners (None: the runtime default)


@dataclass(frozen=True)
class BenchContext:
    artifact: Path
    checkpoint: Path | None
    threads: int
    max_new_tokens: int = 256


def parse_spec(text: str) -> RunnerSpec:
    match = _SPEC_RE.match(text.strip())
    if not match or match["kind"] not in RUNNER_KINDS:
        raise ConfigError(f"bad runner spec {text!r}: KIND[:VARIANT[:VISION]][+kv=TYPE][+free]"
                          f"[+draft=N][+delay=S] with KIND in {sorted(RUNNER_KINDS)}")
    variant = None if match["variant"] in (None, "-") else match["variant"]
    draft = None if match["draft"] is None else int(match["draft"])
    spec = RunnerSpec(match["kind"], variant, match["vision"], float(match["delay"] or 0.0),
                      text.strip(), draft, bool(match["free"]), match["kv"])
    if spec.free and (spec.kind not in POLICY_LLMS or spec.draft is not None):
        raise ConfigError(f"bad runner spec {text!r}: +free applies to the runtime Policy "
                          f"runners {sorted(POLICY_LLMS)} and excludes +draft")
    if spec.cache_type_k is not None and spec.kind != "gguf":
        raise ConfigError(f"bad runner spec {text!r}: +kv= sets llama.cpp's K cache (gguf)")
    return spec


def free_twin(text: str) -> str | None:
    """The spec of the same engines decoding free greedy (None: not a constrained Policy
    runner). `gguf:q4_k_m+delay=0.2` -> `gguf:q4_k_m+free`."""
    spec = parse_spec(text)
    if spec.kind not in POLICY_LLMS or spec.free:
        return None
    engines = re.split(r"\+(?:draft|delay)=", spec.text, maxsplit=1)[0]  # KIND...[+kv=TYPE]
    return engines + "+free"


def _policy(spec: RunnerSpec, ctx: BenchContext):
    from llara_bench.runners import PolicyRunner
    from llara_edge.runtime.config import RuntimeConfig

    extra = {} if spec.draft is None else {"draft_tokens": spec.draft}
    if spec.cache_type_k is not None:
        extra["cache_type_k"] = spec.cache_type_k
    cfg = RuntimeConfig(llm=POLICY_LLMS[spec.kind],
                        vision=spec.vision or DEFAULT_VISION[spec.kind],
                        variant=spec.variant or "q4_k_m", threads=ctx.threads,
                        max_new_tokens=ctx.max_new_tokens, checkpoint=ctx.checkpoint,
                        constrained=not spec.free, **extra)
    return PolicyRunner(ctx.artifact, cfg, spec.text)


def _hf(spec: RunnerSpec, ctx: BenchContext):
    from llara_bench.baselines import HfGenerateRunner

    if ctx.checkpoint is None:
        raise ConfigError("the hf-generate baseline needs the source checkpoint")
    runner = HfGenerateRunner(ctx.checkpoint, ctx.threads, ctx.max_new_tokens)
    runner.name = spec.text
    return runner


def _stock(spec: RunnerSpec, ctx: BenchContext):
    from llara_bench.baselines import StockGbnfRunner
    from llara_edge.runtime import manifest as mf

    manifest = mf.load_manifest(ctx.artifact)
    variant = spec.variant or "q4_k_m"
    if variant not in manifest.get("llm", {}):
        raise ConfigError(f"artifact {ctx.artifact} has no {variant} GGUF")
    runner = StockGbnfRunner(ctx.artifact / manifest["llm"][variant]["file"],
                             ctx.artifact / manifest["mmproj"]["file"], ctx.threads,
                             ctx.max_new_tokens)
    runner.name = spec.text
    return runner


RUNNER_KINDS: dict[str, Callable] = {"gguf": _policy, "onnx": _policy, "torch": _policy,
                                     "hf-generate": _hf, "stock-gbnf": _stock}


def make_runner(spec: RunnerSpec | str, ctx: BenchContext):
    """The StepRunner a spec names (wrapped in a DelayRunner when it has +delay)."""
    from llara_bench.runners import DelayRunner

    spec = parse_spec(spec) if isinstance(spec, str) else spec
    runner = RUNNER_KINDS[spec.kind](spec, ctx)
    if spec.delay_s:
        runner = DelayRunner(runner, spec.delay_s)
        runner.name = spec.text
    return runner
