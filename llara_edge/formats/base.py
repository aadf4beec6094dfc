"""One object per policy format: all the runtime, the torch reference, export parity, the
simulator and the control loop need to speak it.

Contract:
    fmt = policy_format("llara")                   # a registered format (instances are shared)
    fmt = policy_format("llarva", n_joints=7)      # joint counts are a parameter of the object
    fmt.name, fmt.action_type                      # "llara", PickPlaceAction
    fmt.grammar_kind                               # the answer grammar it decodes with by default
    fmt.grammar_kinds                              # every kind whose answers fmt.parse reads
    fmt.step_kinds                                 # those with LLaRA's "Step k: " header
    fmt.prompt_variants                            # PromptInput.variant values a checkpoint
                                                   # may be trained on (manifest prompt_variant)
    fmt.grammar_options(kind, names, max_steps)    # GrammarSpec keyword arguments for `kind`
    fmt.step_number(user_text) -> int              # the k a "Step k: " header carries after it
    fmt.object_names(user_text) -> tuple[str, ...] # names the prompt mentions (answer names)
    fmt.prompt(PromptInput(...)) -> str            # user text: real robot, simulator, datagen
    fmt.parse(text) -> action                      # strict; ParseError (only) on bad text
    fmt.check(action) -> action                    # ParseError unless it is this format's action
    fmt.answer(action, user_text) -> str           # the answer text (oracle, data generator)
    format_for_grammar(kind, preferred, n_joints)  # the format whose parser reads `kind`'s answers
    POLICY_FORMATS.names()

A format is one module holding a PolicyFormat subclass registered under its name:

    @POLICY_FORMATS.register("mine")
    class MyFormat(PolicyFormat): ...

The built-ins are the modules `llara_edge/formats/<name>_format.py` ("llara", "llarva"),
found by their file name and imported on first use, so a built-in format is its one file;
another distribution adds formats through the entry-point group `llara_edge.formats` (value
"module:Class", or a module that registers its classes). An unknown name is a ConfigError
listing the known ones. Grammar kinds are those of
decoding.answer_grammars.GRAMMARS: a format names them, the runtime compiles them.
"""

from __future__ import annotations

import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from llara_drivers.registry import Registry
from llara_edge.actions import Action, PickPlaceAction
from llara_edge.errors import ConfigError, ParseError

N_ARM_JOINTS = 5  # joints of the SO-101 arm (and the simulator's); the jaw is the gripper value

_BUILTIN_SUFFIX = "_format"  # llara_edge/formats/<name>_format.py registers format <name>


def _builtin_formats() -> dict[str, str]:
    """Built-in format name -> module, one per formats/<name>_format.py."""
    found = pkgutil.iter_modules([str(Path(__file__).parent)])
    return {m.name.removesuffix(_BUILTIN_SUFFIX): f"llara_edge.formats.{m.name}"
            for m in found if m.name.endswith(_BUILTIN_SUFFIX)}


POLICY_FORMATS = Registry("policy format", _builtin_formats(), attr="name",
                          group="llara_edge.formats", error=ConfigError)


@dataclass(frozen=True)
class PromptInput:
    """What a user prompt may be built from; each format reads the fields it needs.

    instruction  the task in words (a real robot's --task, a simulator task's instruction)
    objects      the objects the instruction names: (name, bbox or None) mentions or a mapping
                 name -> bbox, bbox = (cx, cy, w, h) normalised (LLaRA inlines them)
    describe     inline the boxes (LLaRA D-inBC) rather than the names alone (inBC)
    paraphrase   index of an instruction paraphrase line, None for none (LLaRA)
    history      actions executed in this episode, oldest first
    poses        joint poses seen in this episode, oldest first, the current one last; each
                 holds at least the format's n_joints values (LLARVA's proprio history)
    robot        the robot's name as a prompt states it (LLARVA)
    variant      the format's own prompt variant (LLARVA: "train" | "eval" | "trace" |
                 "trace_agent", formats.llarva.PROMPTS; LLaRA: how a scene block ends,
                 formats.llara.PROMPT_VARIANTS); None: the format's default
    """

    instruction: str
    objects: Mapping | Sequence = ()
    describe: bool = False
    paraphrase: int | None = None
    history: Sequence[Action] = ()
    poses: Sequence[Sequence[float]] = ()
    robot: str = "SO-101"
    variant: str | None = None


class PolicyFormat(ABC):
    """Base of the policy formats (module contract); subclasses fill the class attributes
    and prompt / parse / answer."""

    name: str = ""  # set by POLICY_FORMATS.register
    action_type: type = PickPlaceAction  # what parse returns (the loop executes its base)
    grammar_kind: str = ""
    grammar_kinds: tuple[str, ...] = ()
    step_kinds: tuple[str, ...] = ()  # grammar kinds whose answers open with "Step k: "
    prompt_variants: tuple[str, ...] = ()  # variants a checkpoint may be trained on (manifest)

    def __init__(self, n_joints: int = N_ARM_JOINTS):
        if not isinstance(n_joints, int) or isinstance(n_joints, bool) or n_joints < 1:
            raise ConfigError(f"n_joints must be an int >= 1, got {n_joints!r}")
        self.n_joints = n_joints

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n_joints={self.n_joints})"

    def grammar_options(self, kind: str, names: Sequence[str] | None = None,
                        max_steps: int = 1) -> dict:
        """GrammarSpec keyword arguments `kind` compiles with: step kinds admit every header
        "Step 1:".."Step max_steps:" and none (each act pins one, decoding.step_header)."""
        spec = {"names": names, "n_joints": self.n_joints}
        if kind in self.step_kinds:
            spec.update(first_step=1, last_step=max_steps, numbered=None)
        return spec

    def step_number(self, user_text: str) -> int:
        """The k of the "Step k: " header an answer to `user_text` carries (step kinds)."""
        return 1

    def object_names(self, user_text: str) -> tuple[str, ...]:
        """The object names `user_text` mentions, which answers may name (none by default)."""
        return ()

    @abstractmethod
    def prompt(self, inp: PromptInput) -> str:
        """The user text (with its image tag) the policy is asked."""

    @abstractmethod
    def parse(self, text: str) -> Action:
        """The typed action of an answer (ParseError naming why not)."""

    @abstractmethod
    def answer(self, action: Action, user_text: str) -> str:
        """The answer text this format's checkpoints write for `action` (oracle, datagen)."""

    def check(self, action: Action) -> Action:
        """`action` if it is one this format's answers carry, else ParseError ("wrong_action":
        a policy answered in another format than the prompt's)."""
        if not isinstance(action, self.action_type):
            raise ParseError("wrong_action", f"policy format {self.name!r} expects a "
                             f"{self.action_type.__name__}, got {type(action).__name__}")
        return action


_INSTANCES: dict[tuple[type, int], PolicyFormat] = {}


def policy_format(name: str, n_joints: int = N_ARM_JOINTS) -> PolicyFormat:
    """The registered format `name` (ConfigError naming the known ones when unknown)."""
    cls = POLICY_FORMATS.get(name)
    key = (cls, n_joints)
    if key not in _INSTANCES:
        _INSTANCES[key] = cls(n_joints)
    return _INSTANCES[key]


def format_for_grammar(kind: str, preferred: str, n_joints: int = N_ARM_JOINTS) -> PolicyFormat:
    """The format whose parser reads answers of grammar `kind`: `preferred` (an artifact's
    format) when it does, else the first known format that does (ConfigError if none)."""
    fmt = policy_format(preferred, n_joints)
    if kind in fmt.grammar_kinds:
        return fmt
    for name in POLICY_FORMATS.names():
        if kind in POLICY_FORMATS.get(name).grammar_kinds:
            return policy_format(name, n_joints)
    raise ConfigError(f"no policy format reads answers of grammar kind {kind!r}; formats: "
                      + ", ".join(f"{n} {list(POLICY_FORMATS.get(n).grammar_kinds)}"
                                  for n in POLICY_FORMATS.names()))
