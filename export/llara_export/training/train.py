"""The training loop of the tiny LLaVA policy: AdamW, warmup + cosine, clipping, checkpoints.

Contract:

    result = train(model, dataset, TrainConfig(steps=1200), state_dir=Path("run/state"))
        -> TrainResult(steps, losses per step, group per step, wall_s, final_loss)

Each step draws one batch group from `TrainConfig.mix` (weights normalised over the groups
the data set has; groups the mix does not name get `default_weight`), or from
`curriculum_mix` during the first `curriculum_steps` steps, draws `batch_size` samples of
it, and takes one AdamW step on LLaVA's loss (mean next-token cross-entropy over the answer
tokens). The learning rate warms up linearly for `warmup_steps`, then follows a
cosine down to `lr * min_lr_ratio`. Gradients are clipped to `grad_clip` (global L2 norm).

Determinism: torch and NumPy are seeded from `seed`, torch runs on `threads` threads; the
same data, config and seed give the same losses on the same machine. With `state_dir`, the
model, optimiser, step and RNG states are written every `checkpoint_every` steps and a run
that finds a state there resumes from it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from llara_edge.errors import ConfigError
from llara_export.models.llava import LlavaPolicyModel
from llara_export.training.data import TrainingSet

STATE_FILE = "train_state.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; `mix` maps batch groups to sampling weights."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 2
    mix: dict[str, float] = field(default_factory=dict)
    default_weight: float = 1.0
    curriculum_mix: dict[str, float] = field(default_factory=dict)  # only named groups
    curriculum_steps: int = 0
    log_every: int = 25
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.threads < 1:
            raise ConfigError("steps, batch_size and threads must be >= 1")
        if not (self.lr > 0 and 0 <= self.min_lr_ratio <= 1 and self.grad_clip > 0):
            raise ConfigError("need lr > 0, 0 <= min_lr_ratio <= 1, grad_clip > 0")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.checkpoint_every < 1:
            raise ConfigError("warmup_steps, weight_decay >= 0 and checkpoint_every >= 1")
        weights = [*self.mix.values(), *self.curriculum_mix.values(), self.default_weight]
        if any(w < 0 for w in weights):
            raise ConfigError("mix weights must be >= 0")
        if not 0 <= self.curriculum_steps <= self.steps:
            raise ConfigError("curriculum_steps must be in 0..steps")
        if self.curriculum_steps and not self.curriculum_mix:
            raise ConfigError("curriculum_steps needs a curriculum_mix")

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) `step`: linear warmup, then cosine to lr * min_lr_ratio."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.lr * self.min_lr_ratio
        return floor + (self.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def group_weights(self, groups: list[str], curriculum: bool = False
                      ) -> tuple[list[str], np.ndarray]:
        """Groups with a positive weight and their normalised sampling probabilities."""
        if curriculum:
            weights = {g: self.curriculum_mix.get(g, 0.0) for g in groups}
        else:
            weights = {g: self.mix.get(g, self.default_weight) for g in groups}
        chosen = [g for g in groups if weights[g] > 0]
        if not chosen:
            raise ConfigError(f"the mix gives every group weight 0: {groups}")
        probs = np.array([weights[g] for g in chosen], dtype=np.float64)
        return chosen, probs / probs.sum()


@dataclass
class TrainResult:
    steps: int
    losses: list[float]  # one per step
    groups: list[str]  # the batch group of each step
    wall_s: float

    def final_loss(self, window: int = 50) -> float:
        """Mean loss of the last `window` steps."""
        tail = self.losses[-window:]
        return float(np.mean(tail)) if tail else float("nan")

    def group_losses(self, window: int = 200) -> dict[str, float]:
        """Mean loss per group over the last `window` steps."""
        acc: dict[str, list[float]] = {}
        for g, loss in zip(self.groups[-window:], self.losses[-window:], strict=True):
            acc.setdefault(g, []).append(loss)
        return {g: float(np.mean(v)) for g, v in sorted(acc.items())}


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms and 1-D parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)


def _save_state(path: Path, model, opt, step: int, rng: np.random.Generator,
                result: TrainResult) -> None:
    """Tensors through torch.save, everything else as one JSON string inside it, so that the
    state loads with torch.load(weights_only=True); written to a temporary file, then renamed."""
    meta = {"step": step, "numpy_rng": rng.bit_generator.state, "losses": result.losses,
            "groups": result.groups, "wall_s": result.wall_s}
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                "torch_rng": torch.get_rng_state(), "meta": json.dumps(meta)}, tmp)
    tmp.replace(path)


def _load_state(path: Path, model, opt, rng: np.random.Generator, result: TrainResult) -> int:
    try:
        state = torch.load(path, weights_only=True)
        meta = json.loads(state["meta"])
    except (RuntimeError, KeyError, ValueError, OSError) as err:
        raise ConfigError(f"unreadable training state {path}: {err}") from err
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    rng.bit_generator.state = meta["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    result.losses, result.groups = meta["losses"], meta["groups"]
    result.wall_s = meta["wall_s"]
    return int(meta["step"])


def train_step(model: LlavaPolicyModel, opt: torch.optim.Optimizer, batch, lr: float,
               grad_clip: float) -> float:
    """One optimiser step on one batch; returns the loss."""
    for group in opt.param_groups:
        group["lr"] = lr
    if batch.pixel_values is None:  # text-only rows go straight to the LLM
        out = model.llm(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                        labels=batch.labels, use_cache=False)
    else:
        out = model(batch.input_ids, batch.pixel_values, labels=batch.labels,
                    attention_mask=batch.attention_mask)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return float(out.loss.detach())


def train(model: LlavaPolicyModel, dataset: TrainingSet, cfg: TrainConfig,
          state_dir: Path | None = None, log: Callable[[str], None] | None = None,
          stop_at: int | None = None) -> TrainResult:
    """Train `model` in place up to cfg.steps (or `stop_at`, saving the state there), resuming
    from state_dir when a state is there."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    mixes = {False: cfg.group_weights(dataset.groups)}
    if cfg.curriculum_steps:
        mixes[True] = cfg.group_weights(dataset.groups, curriculum=True)
    model.train()
    opt = make_optimizer(model, cfg)
    result = TrainResult(cfg.steps, [], [], 0.0)
    state = Path(state_dir) / STATE_FILE if state_dir else None
    start = _load_state(state, model, opt, rng, result) if state and state.is_file() else 0
    t0 = time.perf_counter() - result.wall_s
    end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    for step in range(start, end):
        groups, probs = mixes[step < cfg.curriculum_steps]
        group = groups[int(rng.choice(len(groups), p=probs))]
        batch = dataset.batch(rng, group, cfg.batch_size)
        result.losses.append(train_step(model, opt, batch, cfg.lr_at(step), cfg.grad_clip))
        result.groups.append(group)
        result.wall_s = time.perf_counter() - t0
        if log and ((step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps):
            recent = np.mean(result.losses[-cfg.log_every:])
            log(f"step {step + 1}/{cfg.steps} loss {recent:.4f} lr {cfg.lr_at(step):.2e} "
                f"{result.wall_s:.0f}s")
        if state and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == end):
            state.parent.mkdir(parents=True, exist_ok=True)
            _save_state(state, model, opt, step + 1, rng, result)
    model.eval()
    return result
