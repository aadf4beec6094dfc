"""Test helpers for the decoding kernels: a format corpus, a tokenizer trained on it, and
random well-formed answers (LLaRA steps with the catalogue's object names, LLARVA steps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.formats import format_answer, format_llarva_answer
from llara_edge.sim.catalog import COLOUR_NAMES, CONTAINER_NAMES, SHAPE_NAMES
from llara_export.models.tokenizer import SpmTokenizer
from llara_export.training.tokenizer import TokenizerConfig, fixed_texts, train_tokenizer

NAMES = tuple(f"{c} {k}" for c in COLOUR_NAMES for k in (*SHAPE_NAMES, *CONTAINER_NAMES))
N_JOINTS = 7


def random_action(rng: np.random.Generator, names=NAMES, tools=("suction", "spatula")):
    def r() -> float:
        return round(float(rng.random()), 3) if rng.random() < 0.95 else 1.0

    rotation = int(rng.integers(-359, 360)) if rng.random() < 0.7 else 0
    return PickPlaceAction((r(), r()), (r(), r()), rotation, tool=str(rng.choice(tools)),
                           object_name=str(rng.choice(names)))


def random_joint_action(rng: np.random.Generator, trace: bool) -> JointStepAction:
    joints = tuple(np.round(rng.normal(scale=2.0, size=N_JOINTS), int(rng.integers(1, 5))))
    points = tuple((int(rng.integers(0, 1000)), int(rng.integers(0, 1000)))
                   for _ in range(int(rng.integers(1, 5))))
    return JointStepAction(tuple(float(np.clip(j, -9.9999, 9.9999)) for j in joints),
                           float(rng.choice([0.0, 1.0, 0.5])), points if trace else None)


def corpus(n: int = 300, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        texts.append(format_answer([random_action(rng)], first_point_spaces=1 + i % 2))
        texts.append(format_llarva_answer(random_joint_action(rng, bool(i % 2)), N_JOINTS))
    return texts + fixed_texts()


def train_test_tokenizer(out_dir: Path, vocab_size: int = 512) -> SpmTokenizer:
    return train_tokenizer(corpus(), out_dir, TokenizerConfig(vocab_size=vocab_size))
