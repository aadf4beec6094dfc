"""Datagen JSON -> tokenised LLaVA training samples, grouped by task, and padded batches.

Contract:

    records = load_records([dir1, dir2])      # llara.json + llarva.json of each datagen dir
    sample = tokenize_sample(tok, prompt, answer, VICUNA_V1)
        -> (input_ids, labels): the full vicuna_v1 conversation
           "{system} USER: {prompt} ASSISTANT: {answer}</s>" encoded as LLaVA's
           tokenizer_image_token does (tokenizer.encode_multimodal); labels are IGNORE_INDEX
           (-100) on everything up to and including "ASSISTANT:" and on the image placeholder,
           the answer tokens and the final </s> are learned (LLaVA's preprocess_v1 masking)
    answer_forms(records) -> ("numbered",)   # the "Step k: " forms of the LLaRA action
                                             # answers (formats.llara.ANSWER_FORMS order)
    ds = TrainingSet.build(records, tok, DataConfig(image_size=112))
    batch = ds.batch(rng, group, batch_size) -> Batch of torch tensors:
        input_ids (B, L) int64, right-padded with pad_id; labels (B, L), -100 on padding;
        attention_mask (B, L) bool; pixel_values (B, 3, S, S) float32 (LLaVA 'pad' preprocessing)

Groups are `task` for LLARVA / aux samples and `task/family` for behaviour cloning
("dinbc/visual_manipulation"); a batch holds one group so its rows have similar lengths.
Images are preprocessed once (llara_edge.models.preprocess) and kept as float16.

Text-only samples (as the ShareGPT conversations in LLaVA-1.5's mix): `text_only(record)`
keeps the behaviour-cloning prompt's <task> line (and its history) without the image tag and
the fixed format instructions; its group is "text/" + the record's group and its batches have
`pixel_values` None. The short sequences let the tiny LM learn to copy the boxes of the task
line into the answer much sooner than the full prompts do. `text_localisation(record)` asks
LLaRA's localisation question about each object described in that task line: its answer is
the box copied exactly, which teaches the copy itself (the behaviour-cloning answers are the
expert's box-centre points, the same copy inside the whole D-inBC answer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from llara_edge.errors import ConfigError
from llara_edge.formats import (
    ACTION_PROMPTS,
    FORMAT_PROMPTS,
    LOCALIZATION_PROMPTS,
    VICUNA_V1,
    ConvTemplate,
    build_prompt,
)
from llara_edge.formats.llara import ANSWER_FORMS, answer_form
from llara_edge.formats.templates import IMAGE_TAG_RE
from llara_edge.models.preprocess import PreprocessConfig, preprocess_image
from llara_export.models.tokenizer import SpmTokenizer
from llara_export.training.tokenizer import EOS_TEXT, encode_multimodal

IGNORE_INDEX = -100  # llava/constants.py
BC_TASKS = ("inbc", "dinbc")  # behaviour-cloning samples are grouped per family too


@dataclass(frozen=True)
class Record:
    """One conversation sample of a datagen directory."""

    group: str
    image: Path | None  # absolute path of the frame; None for a text-only sample
    prompt: str
    answer: str
    raw: bool = False  # plain text "<s>{prompt}\n{answer}</s>", no conversation template


_FIXED_LINES = frozenset((*FORMAT_PROMPTS.values(), *ACTION_PROMPTS))


def text_only(record: Record) -> Record:
    """The text-only variant of a behaviour-cloning sample (see the module docstring)."""
    lines = [ln for ln in record.prompt.split("\n")
             if not IMAGE_TAG_RE.fullmatch(ln) and ln not in _FIXED_LINES]
    return Record(f"text/{record.group}", None, "\n".join(lines), record.answer)


# An object with its box inlined in a D-inBC task line (formats.llara.format_object).
_DESCRIBED_RE = re.compile(r"<p>([^<>]+)</p> at <b>\([^()]*\), \{[^{}]*\}</b>")


def text_localisation(record: Record) -> list[Record]:
    """Text-only localisation questions on a D-inBC sample: for each object whose box the task
    line carries, LLaRA's localisation question (prompt k cycles with the object) after the
    <task> line, answered with LLaRA's localisation answer, i.e. that box copied exactly."""
    task = text_only(record).prompt.split("\n")[0]
    out = []
    for k, m in enumerate(_DESCRIBED_RE.finditer(task)):
        question = LOCALIZATION_PROMPTS[(len(task) + k) % len(LOCALIZATION_PROMPTS)]
        question = question.replace("{object}", f"<p>{m.group(1)}</p>")
        out.append(Record("text/localisation", None, f"{task}\n{question}", m.group(0) + "."))
    return out


def group_of(meta: dict) -> str:
    """Batch group of a sample: "dinbc/visual_manipulation", "localisation", ..."""
    task = meta["task"]
    return f"{task}/{meta['family']}" if task in BC_TASKS else task


def load_records(dirs: Iterable[str | Path]) -> list[Record]:
    """Every sample of llara.json and llarva.json in each datagen output directory."""
    records = []
    for d in map(Path, dirs):
        for name in ("llara.json", "llarva.json"):
            path = d / name
            if not path.is_file():
                raise ConfigError(f"{path} missing: not a datagen output directory")
            for rec in json.loads(path.read_text()):
                human, gpt = rec["conversations"]
                records.append(Record(group_of(rec["meta"]), d / rec["image"], human["value"],
                                      gpt["value"]))
    return records


def answer_forms(records: Iterable[Record]) -> tuple[str, ...]:
    """The forms ("numbered" "Step k: Pick up ...", "unnumbered" "Pick up ...") of the LLaRA
    action answers among `records`, what a checkpoint trained on them writes (recorded next
    to its weights: llara_export.text_formats); () when none is a LLaRA action answer."""
    found = {answer_form(r.answer) for r in records}
    return tuple(f for f in ANSWER_FORMS if f in found)


def tokenize_raw(tok: SpmTokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """input_ids and labels of a plain-text sample "<s>{prompt}\n{answer}</s>" (the
    template-free pretraining form of the copy curriculum); the answer and </s> are learned."""
    head = [tok.bos_id, *tok.encode(prompt + "\n")]
    tail = [*tok.encode(answer), tok.eos_id]
    return head + tail, [IGNORE_INDEX] * len(head) + tail


def tokenize_sample(tok: SpmTokenizer, prompt: str, answer: str,
                    template: ConvTemplate = VICUNA_V1) -> tuple[list[int], list[int]]:
    """input_ids and labels of one conversation, the answer (and its </s>) unmasked."""
    full = build_prompt(template, prompt, answer)
    head = build_prompt(template, prompt)  # "... ASSISTANT:" exactly as at inference
    if not full.startswith(head) or not full.endswith(template.sep2):
        raise ConfigError("the conversation template does not end the answer with its sep2")
    if template.sep2 != EOS_TEXT:
        raise ConfigError(f"template {template.name!r} does not close turns with </s>")
    ids, head_ids = encode_multimodal(tok, full), encode_multimodal(tok, head)
    # Whitespace starts a new piece, so the head is a token prefix of the full text.
    if ids[: len(head_ids)] != head_ids:
        raise ConfigError("prompt tokens are not a prefix of the conversation tokens")
    labels = [IGNORE_INDEX] * len(head_ids) + ids[len(head_ids):]
    return ids, labels


@dataclass(frozen=True)
class DataConfig:
    """Image preprocessing and tokenisation limits."""

    image_size: int = 112
    max_tokens: int = 1024  # text tokens (image placeholder counted once); longer -> error
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.image_size < 14 or self.max_tokens < 16:
            raise ConfigError("image_size must be >= 14 and max_tokens >= 16")


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, L) int64
    labels: torch.Tensor  # (B, L) int64
    attention_mask: torch.Tensor  # (B, L) bool
    pixel_values: torch.Tensor | None  # (B, 3, S, S) float32; None: text-only rows


@dataclass
class TrainingSet:
    """Tokenised samples by group, with the preprocessed images they point to."""

    cfg: DataConfig
    samples: dict[str, list[tuple[list[int], list[int], int]]]  # group -> (ids, labels, image)
    # image: row of `images`, -1 for text-only samples
    images: np.ndarray  # (N, 3, S, S) float16
    answer_tokens: dict[str, int] = field(default_factory=dict)  # group -> learned tokens

    @classmethod
    def build(cls, records: Sequence[Record], tok: SpmTokenizer,
              cfg: DataConfig | None = None) -> TrainingSet:
        cfg = cfg or DataConfig()
        pre = PreprocessConfig(image_size=cfg.image_size)
        index: dict[Path, int] = {}
        pixels: list[np.ndarray] = []
        samples: dict[str, list[tuple[list[int], list[int], int]]] = {}
        learned: dict[str, int] = {}
        for rec in records:
            if rec.image is not None and rec.image not in index:
                index[rec.image] = len(pixels)
                with Image.open(rec.image) as img:
                    pixels.append(preprocess_image(img, pre).astype(np.float16))
            tokenize = tokenize_raw if rec.raw else tokenize_sample
            ids, labels = tokenize(tok, rec.prompt, rec.answer)
            if len(ids) > cfg.max_tokens:
                raise ConfigError(f"{len(ids)} tokens > max_tokens {cfg.max_tokens}: {rec.image}")
            image = -1 if rec.image is None else index[rec.image]
            samples.setdefault(rec.group, []).append((ids, labels, image))
            learned[rec.group] = learned.get(rec.group, 0) + sum(t != IGNORE_INDEX for t in labels)
        if not samples:
            raise ConfigError("no training samples")
        size = (0, 3, cfg.image_size, cfg.image_size)
        images = np.stack(pixels) if pixels else np.zeros(size, np.float16)
        return cls(cfg, samples, images, learned)

    @property
    def groups(self) -> list[str]:
        return sorted(self.samples)

    def sizes(self) -> dict[str, int]:
        return {g: len(s) for g, s in sorted(self.samples.items())}

    def collate(self, rows: Sequence[tuple[list[int], list[int], int]]) -> Batch:
        """Right-pad rows to the longest one; rows are all with images or all text-only."""
        width = max(len(ids) for ids, _, _ in rows)
        input_ids = torch.full((len(rows), width), self.cfg.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for b, (ids, lab, _) in enumerate(rows):
            input_ids[b, : len(ids)] = torch.tensor(ids)
            labels[b, : len(lab)] = torch.tensor(lab)
            mask[b, : len(ids)] = True
        imgs = [img for _, _, img in rows]
        if min(imgs) < 0 <= max(imgs):
            raise ConfigError("a batch mixes text-only rows and rows with images")
        pix = None if imgs[0] < 0 else torch.from_numpy(self.images[imgs].astype(np.float32))
        return Batch(input_ids, labels, mask, pix)

    def batch(self, rng: np.random.Generator, group: str, batch_size: int) -> Batch:
        """`batch_size` samples of one group drawn without replacement (with, if too few)."""
        pool = self.samples[group]
        pick = rng.choice(len(pool), size=batch_size, replace=batch_size > len(pool))
        return self.collate([pool[int(i)] for i in pick])
