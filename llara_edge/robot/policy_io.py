"""What the control loop asks of a policy and how it builds the prompt.

Contract:
- A `TextPolicy` answers `act(rgb, user_text) -> PolicyOutput(text, timings, info, action)`:
  the raw answer text, the seconds spent per stage inside the policy ("preprocess",
  "vision", "prefill", "decode", ...) and, from a policy that parses its own answer, the
  typed action. The loop takes that action as it is (the policy's "parse" stage was the one
  parse); the answer of a text-only policy (action None: the oracle, the torch reference,
  test fakes) is parsed once by the loop, timed as "parse", with the parser of the
  prompter's policy format (llara_edge.formats.base).
- Adapters: `RuntimeTextPolicy` over the runtime's `Policy` (llara_edge.runtime.policy,
  `act(rgb, task) -> PolicyStep(text, action, timings, ...)`: text, action and every stage
  timing are handed on); the torch reference's
  (`llara_export.torch_ref.TorchTextPolicy`) comes through `load_named_policy`.
  `load_runtime_policy(artifact_dir, config)` loads an exported artifact and nothing else
  (ArtifactError when it is missing or broken); `load_named_policy("torch-reference",
  checkpoint)` is only called when that policy is asked for by name. Neither ever exports.
- A `Prompter` turns the robot state into the user text: `TaskPrompter` for a free-text task
  (the real robot: LLaRA inBC, or LLARVA with the proprio history), `SimPrompter` for a
  simulator episode (D-inBC with the oracle boxes, or LLARVA, as `llara_edge.sim.policy_agent`).
  `format` names the policy format (a name of formats.POLICY_FORMATS) whose prompt builder
  writes the text and whose parser and action type the loop applies; `reset()` starts a new
  episode. `recorded_variants(policy)` = {format: prompt variant} of a runtime policy whose
  artifact (or config) records one, for the prompters' `variants` (PromptInput.variant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from llara_edge.actions import Action, PickPlaceAction
from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.formats import N_ARM_JOINTS, PromptInput, policy_format

if TYPE_CHECKING:
    from llara_edge.runtime.config import RuntimeConfig

POLICY_ENTRY_POINTS = "llara_edge.policies"  # text policies other components provide


@dataclass
class PolicyOutput:
    """One answer: text, seconds per internal stage, extra counters (tokens, passes), and
    the typed action when the policy parsed its answer itself (None: the loop parses)."""

    text: str
    timings: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    action: Action | None = None


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
        # the runtime parsed its answer (its "parse" stage): the loop takes the action as is
        return PolicyOutput(step.text, dict(step.timings), info, step.action)


def load_runtime_policy(artifact_dir: Path, config: RuntimeConfig | None = None
                        ) -> RuntimeTextPolicy:
    """The runtime `Policy` over an exported artifact, on the engines of `config` (None: its
    defaults, gguf + onnx). A missing, unreadable or unverifiable artifact is an
    ArtifactError: no other model ever stands in for it (the runtime itself never exports)."""
    from llara_edge.runtime.config import RuntimeConfig
    from llara_edge.runtime.policy import Policy

    config = config or RuntimeConfig(n_joints=N_ARM_JOINTS)
    artifact_dir = Path(artifact_dir)
    if not (artifact_dir / "manifest.json").is_file():
        what = "a file" if artifact_dir.is_file() else (
            "a directory without manifest.json" if artifact_dir.is_dir() else "missing")
        raise ArtifactError(
            f"no exported artifact at {artifact_dir} ({what}): export one with `llara-edge "
            f"export CHECKPOINT --out {artifact_dir}` (tools/setup.sh exports the bundled tiny "
            "policy to artifacts/tiny-llara); the torch reference runs only when named: "
            "--policy torch-reference --checkpoint DIR")
    policy = Policy.load(artifact_dir, config)
    name = f"{config.llm}-{config.variant}+{config.vision}" if config.llm == "gguf" else \
        f"{config.llm}+{config.vision}"
    return RuntimeTextPolicy(policy, name)


def describe_runtime(policy: RuntimeTextPolicy) -> str:
    """One line: engines, decoding options and the artifact (with its manifest hash)."""
    p = policy.policy
    cfg, art = p.config, p.artifact
    return (f"{policy.name} from {art.root} (format {art.policy_format}, manifest sha256 "
            f"{art.manifest_sha256[:12]}; threads {cfg.n_threads}, "
            f"gpu_layers {cfg.gpu_layers}, providers {','.join(cfg.providers)}, K cache "
            f"{cfg.cache_type_k}, drafts {cfg.draft_tokens}, numbering {p.numbering}"
            + (f", prompt variant {p.prompt_variant}" if p.prompt_variant else "") + ")")


def recorded_variants(policy: TextPolicy) -> dict[str, str]:
    """{artifact's policy format: its recorded prompt variant} of a runtime policy ({}: none
    recorded, or not a runtime policy)."""
    inner = getattr(policy, "policy", None)
    variant = getattr(inner, "prompt_variant", None)
    return {inner.artifact.policy_format: variant} if variant else {}


def load_named_policy(name: str, checkpoint: Path, config: RuntimeConfig | None = None
                      ) -> TextPolicy:
    """A policy another component provides under `name` through the entry-point group
    `llara_edge.policies` (llara-edge-export: "torch-reference", the torch reference on a
    source checkpoint); only ever loaded when asked for by name. The entry point is a
    `load(checkpoint, max_new_tokens) -> TextPolicy`."""
    from importlib import metadata

    found = {ep.name: ep for ep in metadata.entry_points(group=POLICY_ENTRY_POINTS)}
    if name not in found:
        raise ConfigError(f"policy {name!r} is not installed here (known: {sorted(found)}); "
                          "the torch reference comes with llara-edge-export (a workstation)")
    budget = config.max_new_tokens if config else 256
    return found[name].load()(Path(checkpoint), budget)


# ----------------------------------------------------------------------------- prompts
class Prompter(Protocol):
    format: str

    def reset(self) -> None: ...

    def __call__(self, q: np.ndarray, history: Sequence[PickPlaceAction]) -> str: ...


@dataclass
class TaskPrompter:
    """The prompt for a free-text task on a real robot, written by the policy format `format`
    (llara: inBC, no object boxes; llarva: the proprio history of the episode's poses) in its
    prompt variant `variant` (None: the format's default; LLARVA: formats.llarva.PROMPTS, the
    one the checkpoint was trained on)."""

    task: str
    format: str = "llara"
    robot: str = "SO-101"
    variants: Mapping[str, str] = field(default_factory=dict)  # format -> prompt variant

    def __post_init__(self) -> None:
        self._format = policy_format(self.format)  # ConfigError naming the known formats
        if not self.task.strip():
            raise ConfigError("the task text is empty")
        self._poses: list[np.ndarray] = []

    def reset(self) -> None:
        self._poses = []

    def __call__(self, q: np.ndarray, history: Sequence[PickPlaceAction]) -> str:
        self._poses.append(np.asarray(q))
        return self._format.prompt(PromptInput(self.task, history=list(history),
                                               poses=self._poses, robot=self.robot,
                                               variant=self.variants.get(self.format)))
