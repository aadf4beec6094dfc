"""What the control loop asks of a policy and how it builds the prompt.

Contract:
- A `TextPolicy` answers `act(rgb, user_text) -> PolicyOutput(text, timings, info)`: the
  raw answer text and the seconds spent per stage inside the policy ("preprocess",
  "vision", "prefill", "decode", ...). The loop parses the text itself (timed as "parse"),
  with the parser of the prompter's format, so every backend is checked the same way.
- Adapters: `RuntimeTextPolicy` over the runtime's `Policy` (llara_edge.runtime.policy,
  `act(rgb, task) -> PolicyStep(text, action, timings, ...)`), `TorchTextPolicy` over the
  torch reference `TorchPolicy` (preprocess and generate timed apart).
  `load_policy(artifact_dir, checkpoint)` prefers the runtime artifact and falls back to
  the torch reference on the checkpoint, saying so through `log`; it never exports.
- A `Prompter` turns the robot state into the user text: `TaskPrompter` for a free-text task
  (LLaRA inBC, the real robot), `SimPrompter` for a simulator episode (D-inBC with the
  oracle boxes, or LLARVA with the proprio history, as `llara_edge.sim.policy_agent`).
  `format` ("llara" | "llarva") selects the parser; `reset()` starts a new episode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ConfigError
from llara_edge.formats import (
    LlaraPrompt,
    LlarvaPrompt,
    ProprioHistory,
    parse_llara_first_step,
    parse_llarva_answer,
)

if TYPE_CHECKING:
    from llara_edge.runtime.config import RuntimeConfig

N_LLARVA_JOINTS = 5  # the SO-101's arm joints (the simulator's LLARVA data uses 5)

PARSERS: dict[str, Callable[[str], PickPlaceAction | JointStepAction]] = {
    "llara": parse_llara_first_step,
    "llarva": lambda text: parse_llarva_answer(text, N_LLARVA_JOINTS),
}


@dataclass
class PolicyOutput:
    """One answer: text, seconds per internal stage, extra counters (tokens, passes)."""

    text: str
    timings: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


class TextPolicy(Protocol):
    def act(self, rgb: np.ndarray, user_text: str) -> PolicyOutput: ...


class RuntimeTextPolicy:
    """The runtime `Policy` (GGUF / ONNX / TensorRT engines) as a TextPolicy."""

    def __init__(self, policy, label: str = ""):
        self.policy = policy
        self.name = f"runtime:{label or type(policy).__name__}"

    def act(self, rgb: np.ndarray, user_text: str) -> PolicyOutput:
        step = self.policy.act(rgb, user_text)
        info = {k: getattr(step, k) for k in ("n_tokens", "forward_passes", "ttft_s")
                if hasattr(step, k)}
        # the loop parses the text itself (stage "parse"); the runtime's own parse of the
        # same text would be counted twice
        timings = {k: v for k, v in (getattr(step, "timings", {}) or {}).items() if k != "parse"}
        return PolicyOutput(step.text, timings, info)


class TorchTextPolicy:
    """The torch reference (`TorchPolicy`) as a TextPolicy: same prompt, greedy decoding."""

    name = "torch-reference"

    def __init__(self, policy):
        self.policy = policy

    def act(self, rgb: np.ndarray, user_text: str) -> PolicyOutput:
        import torch

        p = self.policy
        t0 = time.perf_counter()
        ids = p.prompt_ids(user_text)
        pixels = p.backend.pixel_values(rgb)
        t1 = time.perf_counter()
        tokens = p.backend.model.generate_greedy(
            torch.tensor([ids], dtype=torch.long, device=p.backend.device), pixels,
            max_new_tokens=p.config.max_new_tokens, eos_token_id=p.backend.tokenizer.eos_id)
        t2 = time.perf_counter()
        text = p.backend.tokenizer.decode(tokens).strip()
        return PolicyOutput(text, {"preprocess": t1 - t0, "generate": t2 - t1},
                            {"n_tokens": len(tokens)})


def load_policy(artifact_dir: Path | None, checkpoint: Path, log: Callable[[str], None],
                config: RuntimeConfig | None = None) -> TextPolicy:
    """The runtime policy from `artifact_dir` when it and the runtime exist, else the torch
    reference on `checkpoint` (the runtime itself never exports).

    `config` is the runtime's `RuntimeConfig` (engines, variant, threads, GPU offload, K
    cache, drafts; None: its defaults, gguf + onnx); the torch fallback keeps only its
    `max_new_tokens`."""
    from llara_edge.runtime.config import RuntimeConfig

    config = config or RuntimeConfig(n_joints=N_LLARVA_JOINTS)
    if artifact_dir is not None and (Path(artifact_dir) / "manifest.json").is_file():
        try:
            from llara_edge.runtime.policy import Policy
        except ImportError as exc:
            log(f"policy: artifact {artifact_dir} found but the runtime is unavailable ({exc}); "
                f"falling back to the torch reference on {checkpoint}")
        else:
            name = f"{config.llm}-{config.variant}+{config.vision}"
            log(f"policy: runtime artifact {artifact_dir} ({name}, threads "
                f"{config.threads or 'auto'}, gpu_layers {config.gpu_layers}, providers "
                f"{','.join(config.providers)}, K cache {config.cache_type_k}, drafts "
                f"{config.draft_tokens})")
            return RuntimeTextPolicy(Policy.load(artifact_dir, config), name)
    else:
        log(f"policy: no artifact at {artifact_dir} (run the setup's export to create it); "
            f"falling back to the torch reference on {checkpoint}")
    from llara_edge.backends.torch_ref import PolicyConfig, TorchPolicy

    return TorchTextPolicy(TorchPolicy.load(checkpoint, PolicyConfig(
        max_new_tokens=config.max_new_tokens)))


# ----------------------------------------------------------------------------- prompts
class Prompter(Protocol):
    format: str

    def reset(self) -> None: ...

    def __call__(self, q: np.ndarray, history: Sequence[PickPlaceAction]) -> str: ...


@dataclass
class TaskPrompter:
    """LLaRA inBC prompt for a free-text instruction (no object boxes: a real camera)."""

    task: str
    format: str = "llara"

    def __post_init__(self) -> None:
        if self.format not in PARSERS:
            raise ConfigError(f"prompt format must be one of {sorted(PARSERS)}")
        if not self.task.strip():
            raise ConfigError("the task text is empty")
        self._proprio = ProprioHistory(N_LLARVA_JOINTS)

    def reset(self) -> None:
        self._proprio = ProprioHistory(N_LLARVA_JOINTS)

    def __call__(self, q: np.ndarray, history: Sequence[PickPlaceAction]) -> str:
        if self.format == "llarva":
            self._proprio.push(np.asarray(q)[:N_LLARVA_JOINTS])
            return LlarvaPrompt(self.task.rstrip("."), robot="SO-101").render(self._proprio)
        return LlaraPrompt(self.task, {}, describe=False).render(list(history))


class SimPrompter:
    """Simulator prompts exactly as the data generator writes them (see policy_agent)."""

    def __init__(self, env, describe: bool = True, robot: str = "SO-101"):
        self.env, self.describe, self.robot = env, describe, robot
        self._proprio = ProprioHistory(N_LLARVA_JOINTS)

    @property
    def format(self) -> str:
        return "llarva" if self.env.task.control == "joint" else "llara"

    def reset(self) -> None:
        self._proprio = ProprioHistory(N_LLARVA_JOINTS)

    def __call__(self, q: np.ndarray, history: Sequence[PickPlaceAction]) -> str:
        from llara_edge.sim.policy_agent import llara_user_text

        if self.format == "llarva":
            self._proprio.push(np.asarray(q)[:N_LLARVA_JOINTS])
            return LlarvaPrompt(self.env.task.instruction.rstrip("."),
                                robot=self.robot).render(self._proprio)
        return llara_user_text(self.env, list(history), self.describe)
