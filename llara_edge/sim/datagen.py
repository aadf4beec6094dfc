"""Training data from the simulator: scripted-expert episodes -> LLaVA conversation JSON.

Output directory (written atomically: built under a temporary sibling, then renamed):

    images/{family}_{level}_{seed}_{step}.png   the frame the policy sees at that step
    llara.json    LLaRA samples: inBC, D-inBC (object boxes inlined), auxiliary localisation
                  and detection; multi-step tasks carry the "You have finished:" history
    llarva.json   LLARVA joint-step samples with the proprio history (and the trajectory)
    meta.json     the config, the episode seeds, counts, the expert's success rate and
                  `answer_forms`: how many LLaRA action answers have each form
                  (formats.llara.ANSWER_FORMS: all "numbered", "Step k: ..."), which
                  training records next to the checkpoint (llara_export.text_formats)

Every sample is a LLaVA-format record: {"id", "image", "conversations": [{"from": "human",
"value": prompt}, {"from": "gpt", "value": answer}], "meta": {...}}. Generation is a pure
function of the config: the same config gives byte-identical files. Training seeds start at
TRAIN_SEED_BASE so that evaluation on seeds 0..N never sees a training layout.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ConfigError
from llara_edge.formats import (
    ACTION_PROMPTS,
    DETECTION_PROMPTS,
    LOCALIZATION_PROMPTS,
    PromptInput,
    detection_answer,
    detection_prompt,
    localization_answer,
    localization_prompt,
    policy_format,
)
from llara_edge.formats.llara import ANSWER_FORMS, answer_form
from llara_edge.formats.llarva import DEFAULT_VARIANT, TRACE_VARIANTS, thin_trace
from llara_edge.formats.llarva import PROMPTS as LLARVA_PROMPTS
from llara_edge.sim.camera import project_points
from llara_edge.sim.config import SimConfig
from llara_edge.sim.env import Observation, TabletopEnv
from llara_edge.sim.expert import ScriptedExpert
from llara_edge.sim.prompter import SIM_FORMATS, prompt_input
from llara_edge.sim.tasks import LEVELS, TASK_FAMILIES

TRAIN_SEED_BASE = 1_000_000  # evaluation uses seeds below this


@dataclass(frozen=True)
class DatagenConfig:
    """What to generate. `episodes` is per (family, level); `seed` picks the episode seeds."""

    families: tuple[str, ...] = TASK_FAMILIES
    levels: tuple[str, ...] = ("L1",)
    episodes: int = 10
    seed: int = 0
    width: int = 320
    height: int = 240
    llara_variants: tuple[str, ...] = ("inbc", "dinbc")
    aux: bool = True  # localisation + detection samples on every LLaRA frame
    paraphrase_prob: float = 0.5  # else no instruction line (as LLaRA's training data)
    robot: str = "SO-101"
    trace_prob: float = 0.5  # share of LLARVA samples asking for the trajectory
    llarva_prompt: str = DEFAULT_VARIANT  # LLARVA prompt variant of the other samples
    llarva_trace_prompt: str = "trace"  # ... of those asking for the trajectory
    pose_noise: float = 0.01  # N(0, sd) radians on each history pose, as LLARVA's builder

    def __post_init__(self) -> None:
        unknown = set(self.families) - set(TASK_FAMILIES) or set(self.levels) - set(LEVELS)
        if unknown:
            raise ConfigError(f"unknown families/levels: {sorted(unknown)}")
        if self.episodes < 1 or self.seed < 0:
            raise ConfigError("episodes must be >= 1 and seed >= 0")
        if not set(self.llara_variants) <= {"inbc", "dinbc"} or not self.llara_variants:
            raise ConfigError(f"llara_variants must be from inbc, dinbc: {self.llara_variants}")
        if not (0 <= self.paraphrase_prob <= 1 and 0 <= self.trace_prob <= 1):
            raise ConfigError("probabilities must be in [0, 1]")
        plain = sorted(set(LLARVA_PROMPTS) - TRACE_VARIANTS)
        if self.llarva_prompt not in plain:
            raise ConfigError(f"llarva_prompt must be one of {plain}, got {self.llarva_prompt!r}")
        if self.llarva_trace_prompt not in TRACE_VARIANTS:
            raise ConfigError(f"llarva_trace_prompt must be one of {sorted(TRACE_VARIANTS)}, "
                              f"got {self.llarva_trace_prompt!r}")
        if not 0 <= self.pose_noise < 1:
            raise ConfigError(f"pose_noise must be in [0, 1) rad, got {self.pose_noise!r}")

    def episode_seeds(self) -> list[int]:
        return [TRAIN_SEED_BASE + self.seed * 100_000 + k for k in range(self.episodes)]


def _record(sid: str, image: str, prompt: str, answer: str, **meta) -> dict:
    return {"id": sid, "image": image, "meta": meta,
            "conversations": [{"from": "human", "value": prompt},
                              {"from": "gpt", "value": answer}]}


class _Writer:
    """Collects samples and images under a root directory."""

    def __init__(self, root: Path):
        self.root = root
        (root / "images").mkdir(parents=True)
        self.samples: dict[str, list[dict]] = {"llara": [], "llarva": []}

    def image(self, name: str, obs: Observation) -> str:
        rel = f"images/{name}.png"
        Image.fromarray(obs.rgb).save(self.root / rel, optimize=False)
        return rel


def _llara_samples(rng: np.random.Generator, cfg: DatagenConfig, env: TabletopEnv,
                   action: PickPlaceAction, history: list[PickPlaceAction],
                   image: str) -> Iterator[dict]:
    """inBC / D-inBC behaviour cloning (the pick-and-place format's prompt and answer) plus
    LLaRA's auxiliary samples of one frame."""
    task, objects = env.task, {o.name: o for o in env.oracle_objects()}
    fmt = policy_format(SIM_FORMATS["pick_place"])
    meta = {"family": task.family, "level": task.level, "seed": task.seed, "step": len(history)}
    for variant in cfg.llara_variants:
        paraphrase = (int(rng.integers(len(ACTION_PROMPTS)))
                      if rng.random() < cfg.paraphrase_prob else None)
        prompt = fmt.prompt(prompt_input(env, variant == "dinbc", paraphrase=paraphrase,
                                         history=list(history)))
        answer = fmt.answer(action, prompt)
        yield _record(f"{image}:{variant}", image, prompt, answer, task=variant, **meta)
    if not cfg.aux:
        return
    name = sorted(objects)[int(rng.integers(len(objects)))]
    k = int(rng.integers(len(LOCALIZATION_PROMPTS)))
    yield _record(f"{image}:loc", image, localization_prompt(name, k),
                  localization_answer(name, objects[name].bbox), task="localisation", **meta)
    k = int(rng.integers(len(DETECTION_PROMPTS)))
    scene = [(o.name, o.bbox) for o in objects.values()]
    yield _record(f"{image}:det", image, detection_prompt(k), detection_answer(scene),
                  task="detection", **meta)


def _trace(env: TabletopEnv, poses: list[np.ndarray]) -> tuple[tuple[int, int], ...]:
    """Pixels of the tool tip at `poses` (the current pose, then every later one to the end of
    the episode), thinned as LLARVA's find_tj (formats.llarva.thin_trace)."""
    tips = np.array([env.kin.fk(np.asarray(q))[:3, 3] for q in poses])
    px = project_points(env.intrinsics, env.T_base_cam, tips)
    w, h = env.intrinsics.width - 1, env.intrinsics.height - 1
    return thin_trace([(int(np.clip(round(u), 0, w)), int(np.clip(round(v), 0, h)))
                       for u, v in px])


def _llarva_samples(rng: np.random.Generator, cfg: DatagenConfig, env: TabletopEnv,
                    steps: list[tuple[str, np.ndarray, JointStepAction]]) -> Iterator[dict]:
    """One sample per control step (the joint format's prompt and answer): the proprio
    history up to it (each pose with LLARVA's noise, drawn once), the next joint target (and
    the tool tip's trajectory from now to the episode's end when asked for)."""
    task = env.task
    fmt = policy_format(SIM_FORMATS["joint"])
    poses = [q for _, q, _ in steps]
    unit = [rng.standard_normal(q.shape) for q in poses]  # drawn at any pose_noise: the
    if cfg.pose_noise > 0:                                # other draws stay where they were
        poses = [q + cfg.pose_noise * z for q, z in zip(poses, unit, strict=True)]
    for t, (image, q, action) in enumerate(steps):
        traced = rng.random() < cfg.trace_prob
        variant = cfg.llarva_trace_prompt if traced else cfg.llarva_prompt
        path = [q[: len(action.joints)], *(np.asarray(a.joints) for _, _, a in steps[t:])]
        trace = _trace(env, path) if traced else None
        target = JointStepAction(action.joints, action.gripper, trace)
        prompt = fmt.prompt(PromptInput(task.instruction, poses=poses[: t + 1], robot=cfg.robot,
                                        variant=variant))
        yield _record(f"{image}:llarva", image, prompt, fmt.answer(target, prompt),
                      task="llarva_trace" if traced else "llarva_action",
                      prompt_variant=variant, family=task.family, level=task.level,
                      seed=task.seed, step=t)


def _run_episode(env: TabletopEnv, writer: _Writer, cfg: DatagenConfig, family: str,
                 level: str, seed: int) -> bool:
    """Roll the expert out once, writing every frame and its samples; returns success."""
    rng = np.random.default_rng([cfg.seed, seed, TASK_FAMILIES.index(family)])
    obs = env.reset(family, level, seed)
    expert = ScriptedExpert(env)
    history: list[PickPlaceAction] = []
    joint_steps: list[tuple[str, np.ndarray, JointStepAction]] = []
    outcome = None
    while outcome is None or not outcome.done:
        image = writer.image(f"{family}_{level}_{seed}_{env.steps:03d}", obs)
        action = expert.act()
        if isinstance(action, PickPlaceAction):
            writer.samples["llara"].extend(_llara_samples(rng, cfg, env, action, history, image))
            history.append(action)
        else:
            joint_steps.append((image, obs.joints.copy(), action))
        outcome = env.execute(action)
        obs = env.observe()
    if joint_steps:
        writer.samples["llarva"].extend(_llarva_samples(rng, cfg, env, joint_steps))
    return outcome.success


def _atomic_dir(out: Path, build: Callable[[Path], None], overwrite: bool) -> None:
    """Build into a temporary sibling and rename it into place only when complete."""
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists (use overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        build(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def generate(cfg: DatagenConfig, out: Path, overwrite: bool = False,
             progress: Callable[[str], None] | None = None) -> dict:
    """Generate the data set into `out`; returns the summary also written to meta.json."""
    summary: dict = {"config": asdict(cfg), "episodes": {}, "counts": {}}

    def build(root: Path) -> None:
        writer = _Writer(root)
        env = TabletopEnv(SimConfig(width=cfg.width, height=cfg.height))
        try:
            for family in cfg.families:
                for level in cfg.levels:
                    wins = [_run_episode(env, writer, cfg, family, level, s)
                            for s in cfg.episode_seeds()]
                    summary["episodes"][f"{family}/{level}"] = {
                        "seeds": cfg.episode_seeds(), "expert_success": sum(wins) / len(wins)}
                    if progress:
                        progress(f"{family}/{level}: {len(wins)} episodes, "
                                 f"expert success {sum(wins)}/{len(wins)}")
        finally:
            env.close()
        for name, samples in writer.samples.items():
            (root / f"{name}.json").write_text(json.dumps(samples, indent=1))
            summary["counts"][name] = len(samples)
        forms = [answer_form(s["conversations"][1]["value"]) for s in writer.samples["llara"]]
        summary["answer_forms"] = {f: forms.count(f) for f in ANSWER_FORMS}
        (root / "meta.json").write_text(json.dumps(summary, indent=1))

    _atomic_dir(Path(out), build, overwrite)
    return summary
