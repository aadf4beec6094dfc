"""Accuracy suite: parity of every artifact variant and closed-loop success in the simulator.

    python -m llara_bench.bench_accuracy [--quick] [--out DIR]
    (also `llara-edge bench accuracy`)

Contract:
    results = run_accuracy(AccuracyConfig(...), say=print) -> dict ("metrics": gate keys)
    AccuracyConfig.quick_config(**overrides)

Parity (recomputed when the source checkpoint is at hand, else the manifest's report):
- "llm": each GGUF variant on the runtime's gguf engine, fed the reference image embeddings
  (export/llara_export/parity.py measure(): logit diff after the prompt, greedy answer
  agreement, action error in px), gated by the export's own thresholds (failures listed);
- "policy": the runtime Policy on that variant end to end (its vision engine, constrained
  decoding) against the torch reference's free-greedy answer on the same frames: fraction of
  identical actions and the largest pick/place distance in pixels (inf when the reference
  answer parses and the policy's does not).
Closed loop (llara_edge.sim.rollout.evaluate, the machinery of `llara-edge eval`): the
candidate runtime policy and the torch reference (LLaRA's free greedy, max 256 tokens) on the
same (family, level, seed) episodes; success per family and level, parse failures per
decision, and the action error in pixels against the scripted expert on the families whose
correct action is unique (visual_manipulation, rotate). Joint-control families (reach) get
a second runtime policy constrained by the LLARVA grammar.
`degrade="q2_k"` adds a llama.cpp q2_k variant to a copy of the artifact and makes it the
candidate: the deliberately degraded run the gate tests use.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from llara_bench.runners import same_action
from llara_edge.errors import ConfigError, ParseError
from llara_edge.runtime.config import usable_cpus

Say = Callable[[str], None]
UNIQUE_ACTION_FAMILIES = ("visual_manipulation", "rotate")


@dataclass(frozen=True)
class AccuracyConfig:
    checkpoint: Path | None = Path("models/tiny-llara")
    artifact: Path | None = None
    candidate: str = "gguf:q4_k_m"
    parity_frames: int = 8
    frame_size: tuple[int, int] = (320, 240)
    families: tuple[str, ...] | None = None  # None: every family
    levels: tuple[str, ...] = ("L1", "L2", "L3")
    episodes: int = 10
    reference_loop: bool = True
    threads: int = 0
    max_new_tokens: int = 256
    degrade: str | None = None
    cache_dir: Path = Path("cache/bench")
    quick: bool = False

    def __post_init__(self) -> None:
        if self.parity_frames < 1 or self.episodes < 0:
            raise ConfigError("parity_frames must be >= 1 and episodes >= 0")

    @property
    def n_threads(self) -> int:
        return self.threads or usable_cpus()  # RuntimeConfig's meaning of 0

    @classmethod
    def quick_config(cls, **overrides) -> AccuracyConfig:
        base = {"parity_frames": 2, "families": ("visual_manipulation",), "levels": ("L1",),
                "episodes": 2, "quick": True, "threads": 1}
        return cls(**{**base, **overrides})


class _PolicyText:
    """PolicyAgent's TextPolicy over the runtime Policy (answer text of act()).

    The agent parses the text with the parser of the task's format itself; a Policy whose
    own parser is the artifact's format (llara) refuses a LLARVA answer of a joint task with
    a ParseError that carries the text, which is handed to the agent unchanged."""

    def __init__(self, policy):
        self.policy = policy

    def generate(self, image, user_text):
        try:
            step = self.policy.act(image, user_text)
        except ParseError as err:
            return err.text or "", [], []
        return step.text, list(step.tokens), []


def _load_policy(artifact: Path, spec: str, cfg: AccuracyConfig, grammar: str | None = None):
    from llara_bench.specs import DEFAULT_VISION, POLICY_LLMS, parse_spec
    from llara_edge.formats import N_ARM_JOINTS
    from llara_edge.runtime.config import RuntimeConfig
    from llara_edge.runtime.policy import Policy

    s = parse_spec(spec)
    if s.kind not in POLICY_LLMS:
        raise ConfigError(f"the accuracy candidate must be a runtime policy spec, got {spec!r}")
    rc = RuntimeConfig(llm=POLICY_LLMS[s.kind], vision=s.vision or DEFAULT_VISION[s.kind],
                       variant=s.variant or "q4_k_m", threads=cfg.n_threads,
                       max_new_tokens=cfg.max_new_tokens, grammar=grammar,
                       n_joints=N_ARM_JOINTS, checkpoint=cfg.checkpoint)
    return Policy.load(artifact, rc)


def _px_error(ref, act, width: int, height: int) -> float:
    """Largest pick/place distance in pixels (inf when `act` is missing)."""
    if act is None:
        return math.inf
    return max(math.hypot((p[0] - q[0]) * width, (p[1] - q[1]) * height)
               for p, q in ((ref.pick, act.pick), (ref.place, act.place)))


def _policy_parity(artifact: Path, variant: str, refs, cases, cfg: AccuracyConfig) -> dict:
    from llara_edge.formats import parse_llara_first_step

    policy = _load_policy(artifact, f"gguf:{variant}", cfg)
    same, errs, refs_ok = [], [], 0
    try:
        for ref, case in zip(refs, cases, strict=True):
            act = policy.act(case.rgb, case.user_text).action
            try:
                ref_action = parse_llara_first_step(ref.text)
            except ParseError:
                same.append(False)
                continue
            refs_ok += 1
            same.append(same_action(ref_action, act))
            errs.append(_px_error(ref_action, act, case.rgb.shape[1], case.rgb.shape[0]))
    finally:
        policy.close()
    return {"action_agreement": sum(same) / len(same), "frames": len(same),
            "reference_parsed": refs_ok, "max_action_px": max(errs) if errs else None}


def run_parity(artifact: Path, cfg: AccuracyConfig, say: Say) -> dict:
    """Per variant: LLM-only parity (export thresholds) and end-to-end policy parity."""
    from llara_edge.backends.base import make_backend
    from llara_edge.cases import sim_frames
    from llara_edge.runtime import manifest as mf
    from llara_edge.runtime.artifact import Artifact
    from llara_edge.runtime.config import RuntimeConfig
    from llara_export import parity
    from llara_export.torch_ref import PolicyConfig, TorchPolicy

    manifest = mf.load_manifest(artifact)
    if cfg.checkpoint is None:
        return {"source": "manifest", "llm": {r["name"]: r for r in
                                               manifest.get("parity", {}).get("results", [])}}
    say(f"parity: torch reference on {cfg.parity_frames} frames")
    cases = sim_frames(cfg.parity_frames, *cfg.frame_size)
    ref_policy = TorchPolicy.load(cfg.checkpoint, PolicyConfig(max_new_tokens=cfg.max_new_tokens))
    refs = parity.reference_outputs(ref_policy, cases)
    thresholds = parity.load_thresholds()
    out = {"source": "recomputed", "frames": [c.name for c in cases], "llm": {}, "policy": {}}
    art = Artifact.open(artifact)
    for variant in manifest["llm"]:
        say(f"parity: {variant}")
        run = RuntimeConfig(variant=variant, threads=cfg.n_threads, grammar_cache_dir=None)
        with make_backend("gguf", art, run) as backend:  # the runtime's engine, LLM alone
            res = parity.measure(variant, parity.Engines(backend=backend), refs, cases,
                                 ref_policy)
        bounds = thresholds if variant in thresholds else {variant: thresholds["q4_k_m"]}
        parity.gate(res, bounds)
        out["llm"][variant] = res.to_dict()
        out["policy"][variant] = _policy_parity(artifact, variant, refs, cases, cfg)
    return out


def _expert_error_hook(errors: list[float]):
    """rollout on_step hook: pixel error of the decided action against the scripted expert."""
    from llara_edge.actions import PickPlaceAction
    from llara_edge.sim.expert import ScriptedExpert

    def hook(env, obs, action) -> None:
        if env.task.family in UNIQUE_ACTION_FAMILIES and isinstance(action, PickPlaceAction):
            expert = ScriptedExpert(env).act()
            errors.append(_px_error(expert, action, obs.rgb.shape[1], obs.rgb.shape[0]))

    return hook


def _closed_loop(agent_for: Callable[[str], object], cfg: AccuracyConfig, say: Say,
                 label: str) -> dict:
    from llara_edge.sim import TASK_FAMILIES, SimConfig, TabletopEnv
    from llara_edge.sim.rollout import evaluate, success_table

    families = cfg.families or TASK_FAMILIES
    env = TabletopEnv(SimConfig(width=cfg.frame_size[0], height=cfg.frame_size[1]))
    results, px = [], []
    try:
        for family in families:
            say(f"closed loop [{label}]: {family} x {len(cfg.levels)} levels x {cfg.episodes}")
            results += evaluate(env, agent_for(family), [family], cfg.levels,
                                range(cfg.episodes), on_step=_expert_error_hook(px))
    finally:
        env.close()
    decisions = sum(r.steps for r in results)
    parse_failures = sum(e.startswith("ParseError") for r in results for e in r.errors)
    finite = sorted(p for p in px if math.isfinite(p))
    return {"table": success_table(results), "episodes": len(results),
            "success": sum(r.success for r in results) / max(1, len(results)),
            "decisions": decisions, "parse_failures": parse_failures,
            "parse_failure_rate": parse_failures / max(1, decisions),
            "expert_px_median": finite[len(finite) // 2] if finite else None,
            "expert_px_mean": sum(finite) / len(finite) if finite else None}


def _candidate_loop(artifact: Path, cfg: AccuracyConfig, say: Say) -> dict:
    from llara_edge.sim.policy_agent import PolicyAgent
    from llara_edge.sim.tasks import TASK_REGISTRY

    policies = {"pick_place": _load_policy(artifact, cfg.candidate, cfg)}
    try:
        def agent_for(family: str):
            control = TASK_REGISTRY[family].control
            if control not in policies:
                policies[control] = _load_policy(artifact, cfg.candidate, cfg, grammar="llarva")
            return PolicyAgent(_PolicyText(policies[control]))

        return _closed_loop(agent_for, cfg, say, cfg.candidate)
    finally:
        for p in policies.values():
            p.close()


def _reference_loop(cfg: AccuracyConfig, say: Say) -> dict:
    from llara_edge.sim.policy_agent import PolicyAgent
    from llara_export.torch_ref import PolicyConfig, TorchPolicy

    policy = TorchPolicy.load(cfg.checkpoint, PolicyConfig(max_new_tokens=cfg.max_new_tokens))
    return _closed_loop(lambda family: PolicyAgent(policy), cfg, say, "torch reference")


def _metrics(parity: dict, loops: dict, cfg: AccuracyConfig, cand_variant: str) -> dict:
    m: dict[str, float] = {}
    for variant, row in parity.get("llm", {}).items():
        m[f"accuracy.parity.{variant}.export_gate_failures"] = len(row.get("failures") or [])
        if row.get("answer_agreement") is not None:
            m[f"accuracy.parity.{variant}.answer_agreement"] = row["answer_agreement"]
    for variant, row in parity.get("policy", {}).items():
        m[f"accuracy.policy.{variant}.action_agreement"] = row["action_agreement"]
    cand = parity.get("policy", {}).get(cand_variant)
    if cand:
        m["accuracy.candidate.action_agreement"] = cand["action_agreement"]
        if cand["max_action_px"] is not None:
            m["accuracy.candidate.max_action_px"] = cand["max_action_px"]
    for who, loop in loops.items():
        m[f"accuracy.success.{who}.overall"] = loop["success"]
        m[f"accuracy.success.{who}.parse_failure_rate"] = loop["parse_failure_rate"]
        for family, row in loop["table"].items():
            for level, rate in row.items():
                m[f"accuracy.success.{who}.{family}/{level}"] = rate
    if "candidate" in loops and "reference" in loops:
        m["accuracy.candidate.success_minus_reference"] = (
            loops["candidate"]["success"] - loops["reference"]["success"])
    return m


def run_accuracy(cfg: AccuracyConfig, say: Say = lambda m: None) -> dict:
    """The whole accuracy suite (module docstring)."""
    from llara_bench.bench_models import tiny_artifact, with_quant_variant
    from llara_bench.specs import parse_spec

    artifact = cfg.artifact or tiny_artifact(cfg.checkpoint, cfg.cache_dir, say)
    if cfg.degrade:
        say(f"degraded run: adding a {cfg.degrade} variant and making it the candidate")
        artifact = with_quant_variant(artifact, cfg.degrade,
                                      cfg.cache_dir / f"{artifact.name}+{cfg.degrade}")
        cfg = replace(cfg, candidate=f"gguf:{cfg.degrade}")
    parity = run_parity(artifact, cfg, say)
    loops = {}
    if cfg.episodes:
        loops["candidate"] = _candidate_loop(artifact, cfg, say)
        if cfg.reference_loop and cfg.checkpoint is not None:
            loops["reference"] = _reference_loop(cfg, say)
    variant = parse_spec(cfg.candidate).variant or "q4_k_m"
    return {"suite": "accuracy", "quick": cfg.quick, "artifact": str(artifact),
            "candidate": cfg.candidate,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            "parity": parity, "closed_loop": loops,
            "metrics": _metrics(parity, loops, cfg, variant)}


def main(argv: list[str] | None = None) -> int:
    """`python -m llara_bench.bench_accuracy ARGS` = `llara-edge bench accuracy ARGS`."""
    from llara_edge.cli.main import main as cli

    return cli(["bench", "accuracy", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
