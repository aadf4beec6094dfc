"""On-paper per-step latency of a LLaVA-1.5 policy on Jetson Orin modules: an ESTIMATE.

Contract:
    estimate(model=LLARA_7B, device=DEVICES["agx-orin-64gb"], quant="q4_k_m",
             workload=Workload()) -> Estimate (per-stage ms, ideal and expected, fits memory)
    estimate_table(models=(LLARA_7B,), quants=QUANT_BPW) -> list[dict]   # every device x quant
    format_table(rows) -> str

Nothing here is measured on a Jetson. The model (a roofline):
- vision tower (CLIP ViT-L/14-336, fp16, layers up to the selected one) and projector:
  compute-bound GEMMs, time = FLOPs / (dense FP16 FLOP/s x eta_compute), never below the
  time to read their weights once;
- prefill of the prompt tokens (system prefix reused across steps, so not counted; the 576
  image tokens and the task text are): max(FLOPs / FLOP/s, weight bytes / bandwidth);
- decode: memory-bound, each forward pass reads every LLM weight (at the quantisation's
  bits per weight) plus the KV cache once: time per pass = bytes / (bandwidth x eta_memory).
  A jump-forward pass that appends k forced tokens costs about one pass (k << weights).
"ideal" uses eta = 1 (the roofline); "expected" uses the efficiencies of `Workload`:
eta_memory 0.55 is calibrated on the published Llama-2-7B W4A16 decode on AGX Orin
(~31 tokens/s against a 57 tokens/s roofline, FORMATS.md §7); eta_compute 0.5 is an
assumption. CPU stages (capture, preprocess, parse, geometry, drive) are not modelled.

Device figures: memory bandwidth from FORMATS.md §7. Dense FP16 tensor FLOP/s: AGX Orin's
~42 TFLOPS from FORMATS.md; Orin NX 16GB and Orin Nano 8GB are DERIVED by scaling it with
the GPU's sparse-INT8 TOPS in NVIDIA's module data sheets (AGX 170 of its 275 TOPS on the
GPU, NX 16GB 60 of 100, Nano 8GB 40 of 40; Nano Super 67): 42 x 60/170 ~ 14.8, 42 x 40/170
~ 9.9, 42 x 67/170 ~ 16.6. Bits per weight: f16 16; q8_0 8.5 (34-byte blocks of 32);
q4_k_m ~4.84 (llama.cpp's quantize table: 7B at 3.80 GiB).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from llara_edge.errors import ConfigError

GB = 1e9
QUANT_BPW: dict[str, float] = {"f16": 16.0, "q8_0": 8.5, "q4_k_m": 4.84}


@dataclass(frozen=True)
class Device:
    name: str
    bandwidth_gbps: float  # GB/s (1e9)
    fp16_tflops: float  # dense tensor-core FP16
    memory_gb: float  # unified memory shared by CPU and GPU
    source: str


DEVICES: dict[str, Device] = {
    "agx-orin-64gb": Device("AGX Orin 64GB", 204.8, 42.0, 64, "FORMATS.md §7"),
    "orin-nx-16gb": Device("Orin NX 16GB", 102.4, 14.8, 16,
                           "bandwidth FORMATS.md §7; FP16 derived (module docstring)"),
    "orin-nano-8gb": Device("Orin Nano 8GB", 68.0, 9.9, 8,
                            "bandwidth FORMATS.md §7; FP16 derived (module docstring)"),
    "orin-nano-8gb-super": Device("Orin Nano 8GB (Super)", 102.0, 16.6, 8,
                                  "bandwidth FORMATS.md §7; FP16 derived (module docstring)"),
}


@dataclass(frozen=True)
class ModelShape:
    """LLaVA-1.5 shapes: a LLaMA LLM, a CLIP ViT tower, an mlp2x_gelu projector."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    kv_heads_ratio: float = 1.0  # n_kv_heads / n_heads (1 for LLaMA-2 7B, MHA)
    vision_layers: int = 23  # CLIP ViT-L has 24; select layer -2 computes 23
    vision_hidden: int = 1024
    vision_intermediate: int = 4096
    image_tokens: int = 576  # (336 / 14)^2

    def llm_params(self) -> float:
        """Weights read by a decode pass (all layers + lm_head; the embedding is a lookup)."""
        attn = self.hidden * self.hidden * (2 + 2 * self.kv_heads_ratio)
        mlp = 3 * self.hidden * self.intermediate
        return self.layers * (attn + mlp) + self.vocab * self.hidden

    def vision_params(self) -> float:
        d, f = self.vision_hidden, self.vision_intermediate
        return self.vision_layers * (4 * d * d + 2 * d * f)

    def projector_params(self) -> float:
        return self.vision_hidden * self.hidden + self.hidden * self.hidden


LLARA_7B = ModelShape("LLaRA-7B (Vicuna-7B v1.5 + CLIP ViT-L/14-336)", layers=32, hidden=4096,
                      intermediate=11008, vocab=32000)


@dataclass(frozen=True)
class Workload:
    """One control step; token counts estimated for the LLaMA tokenizer (digits split)."""

    text_tokens: int = 230  # D-inBC task text and template after the image (FORMATS.md §2)
    context_tokens: int = 880  # system + image + text + answer: the KV cache read per pass
    passes_constrained: float = 21.0  # free choices of a LLaRA step (digits, rotation, name)
    passes_free: float = 76.0  # one per answer token (LLaMA splits digits), EOS included
    eta_memory: float = 0.55
    eta_compute: float = 0.5
    runtime_overhead_gb: float = 2.0  # OS, CUDA context, activations (fit check only)

    def __post_init__(self) -> None:
        for name in ("eta_memory", "eta_compute"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if min(self.text_tokens, self.context_tokens) < 1 or self.passes_constrained < 1:
            raise ConfigError("token and pass counts must be positive")


@dataclass
class Estimate:
    model: str
    device: str
    quant: str
    ideal_ms: dict[str, float] = field(default_factory=dict)
    expected_ms: dict[str, float] = field(default_factory=dict)
    weights_gb: float = 0.0
    fits: bool = True
    label: str = "ESTIMATE (roofline, not measured)"

    def to_dict(self) -> dict:
        return asdict(self)


def _stages(model: ModelShape, dev: Device, quant: str, w: Workload, eta_m: float,
            eta_c: float) -> dict[str, float]:
    """Milliseconds per stage at the given efficiencies."""
    bw, flops = dev.bandwidth_gbps * GB * eta_m, dev.fp16_tflops * 1e12 * eta_c
    n_img, d, layers = model.image_tokens, model.hidden, model.layers
    vis_flops = 2 * (n_img + 1) * model.vision_params() + \
        model.vision_layers * 4 * (n_img + 1) ** 2 * model.vision_hidden
    vision = max(vis_flops / flops, 2 * model.vision_params() / bw)
    projector = max(2 * n_img * model.projector_params() / flops,
                    2 * model.projector_params() / bw)
    weight_bytes = model.llm_params() * QUANT_BPW[quant] / 8
    t = n_img + w.text_tokens
    pre_flops = 2 * model.llm_params() * t + 2 * layers * t * t * d
    prefill = max(pre_flops / flops, weight_bytes / bw)
    kv_bytes = 2 * layers * d * model.kv_heads_ratio * w.context_tokens * 2  # K and V, fp16
    per_pass = (weight_bytes + kv_bytes) / bw
    return {"vision": vision * 1e3, "projector": projector * 1e3, "prefill": prefill * 1e3,
            "decode": w.passes_constrained * per_pass * 1e3,
            "decode_free_greedy": w.passes_free * per_pass * 1e3,
            "per_pass": per_pass * 1e3}


def estimate(model: ModelShape = LLARA_7B, device: Device | None = None, quant: str = "q4_k_m",
             workload: Workload | None = None) -> Estimate:
    """Per-stage ms of one control step (see the module docstring for the model)."""
    if quant not in QUANT_BPW:
        raise ConfigError(f"unknown quantisation {quant!r}; known: {sorted(QUANT_BPW)}")
    dev = device or DEVICES["agx-orin-64gb"]
    w = workload or Workload()
    est = Estimate(model.name, dev.name, quant)
    for target, eta_m, eta_c in ((est.ideal_ms, 1.0, 1.0),
                                 (est.expected_ms, w.eta_memory, w.eta_compute)):
        stages = _stages(model, dev, quant, w, eta_m, eta_c)
        stages["step"] = stages["vision"] + stages["projector"] + stages["prefill"] + \
            stages["decode"]
        stages["step_free_greedy"] = stages["step"] - stages["decode"] + \
            stages["decode_free_greedy"]
        target.update(stages)
    est.weights_gb = model.llm_params() * QUANT_BPW[quant] / 8 / GB
    vision_gb = 2 * (model.vision_params() + model.projector_params()) / GB
    kv_gb = 2 * model.layers * model.hidden * model.kv_heads_ratio * w.context_tokens * 2 / GB
    est.fits = est.weights_gb + vision_gb + kv_gb + w.runtime_overhead_gb <= dev.memory_gb
    return est


def estimate_table(models: tuple[ModelShape, ...] = (LLARA_7B,),
                   quants: tuple[str, ...] = tuple(QUANT_BPW),
                   workload: Workload | None = None) -> list[dict]:
    """Every model x device x quantisation as flat dicts (expected and ideal ms, Hz)."""
    rows = []
    for model in models:
        for dev in DEVICES.values():
            for quant in quants:
                est = estimate(model, dev, quant, workload)
                rows.append({"model": model.name, "device": dev.name, "quant": quant,
                             "weights_gb": est.weights_gb, "fits": est.fits,
                             "expected_ms": est.expected_ms, "ideal_ms": est.ideal_ms,
                             "expected_hz": 1e3 / est.expected_ms["step"],
                             "label": est.label, "device_source": dev.source})
    return rows


def format_table(rows: list[dict]) -> str:
    """Plain-text table (expected ms; ideal step in brackets)."""
    head = (f"{'device':<22} {'quant':<7} {'GB':>5} {'fits':>4} {'vision':>7} {'prefill':>8} "
            f"{'decode':>7} {'step':>7} {'[ideal]':>8} {'Hz':>5} {'free-greedy':>11}")
    lines = ["ESTIMATE (roofline, not measured on a Jetson): ms per control step", head,
             "-" * len(head)]
    for r in rows:
        e, i = r["expected_ms"], r["ideal_ms"]
        lines.append(
            f"{r['device']:<22} {r['quant']:<7} {r['weights_gb']:>5.1f} "
            f"{'yes' if r['fits'] else 'NO':>4} {e['vision'] + e['projector']:>7.0f} "
            f"{e['prefill']:>8.0f} {e['decode']:>7.0f} {e['step']:>7.0f} {i['step']:>8.0f} "
            f"{r['expected_hz']:>5.2f} {e['step_free_greedy']:>11.0f}")
    return "\n".join(lines)
