"""Box-shift augmentation: D-inBC samples whose text no longer matches the image exactly.

Contract:

    rec2 = shift_boxes(record, rng, ShiftConfig(max_shift=0.12))   # Record | None
    recs = shifted_set(records, n_per_record, seed, ShiftConfig())

Every box of the prompt (`<b>(cx, cy), {w, h}</b>`) moves by its own random offset, and every
point of the prompt and answer that sits on a box centre (the expert picks and places at box
centres, llara_edge.sim.expert) moves with its box; the image is left as it is. The group
gets the suffix "/shift" ("dinbc/visual_manipulation/shift"). A sample with an answer point
on no box centre (scene_understanding's quadrant places) is not augmented: None.

Why: the simulator gives a few hundred scenes per family, and a tiny model fits their place
points from the image (measured on tiny-llara: exact copies of the pick box, but one constant
place point on every evaluation scene) long before it learns to copy the container's box.
With shifted boxes the image no longer tells the answer's digits, the text does, so copying
both boxes is the only way to lower the loss on these samples, while the unshifted samples
keep image and text consistent (as at run time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from llara_edge.errors import ConfigError
from llara_export.training.data import Record

_BOX_RE = re.compile(r"<b>\((\d\.\d{3}), (\d\.\d{3})\), \{(\d\.\d{3}), (\d\.\d{3})\}</b>")
_POINT_RE = re.compile(r"<b>\((\d\.\d{3}),(\s+)(\d\.\d{3})\)</b>")


@dataclass(frozen=True)
class ShiftConfig:
    max_shift: float = 0.12  # normalised image units, per axis, uniform in [-max, max]
    margin: float = 0.03  # shifted centres stay within [margin, 1 - margin]

    def __post_init__(self) -> None:
        if not (0 < self.max_shift < 0.5 and 0 <= self.margin < 0.5):
            raise ConfigError(f"need 0 < max_shift < 0.5 and 0 <= margin < 0.5, got {self}")


def _moved(value: str, delta: float, cfg: ShiftConfig) -> str:
    return f"{min(1 - cfg.margin, max(cfg.margin, float(value) + delta)):.3f}"


def shift_boxes(record: Record, rng: np.random.Generator,
                cfg: ShiftConfig | None = None) -> Record | None:
    """The record with every box (and the points on box centres) moved; see the docstring."""
    cfg = cfg or ShiftConfig()
    centres: dict[tuple[str, str], tuple[str, str]] = {}
    for m in _BOX_RE.finditer(record.prompt):
        if (m[1], m[2]) not in centres:
            dx, dy = rng.uniform(-cfg.max_shift, cfg.max_shift, size=2)
            centres[(m[1], m[2])] = (_moved(m[1], dx, cfg), _moved(m[2], dy, cfg))
    points = [(m[1], m[3]) for m in _POINT_RE.finditer(record.answer)]
    if not centres or not points or any(p not in centres for p in points):
        return None

    def box(m: re.Match) -> str:
        x, y = centres[(m[1], m[2])]
        return f"<b>({x}, {y}), {{{m[3]}, {m[4]}}}</b>"

    def point(m: re.Match) -> str:
        x, y = centres.get((m[1], m[3]), (m[1], m[3]))  # history points off any box stay
        return f"<b>({x},{m[2]}{y})</b>"

    prompt = _POINT_RE.sub(point, _BOX_RE.sub(box, record.prompt))
    return replace(record, group=f"{record.group}/shift", prompt=prompt,
                   answer=_POINT_RE.sub(point, record.answer))


def shifted_set(records: Iterable[Record], n_per_record: int, seed: int,
                cfg: ShiftConfig | None = None) -> list[Record]:
    """`n_per_record` shifted copies of each record that can be shifted (deterministic)."""
    rng = np.random.default_rng([seed, 0x5817])
    out = []
    for rec in records:
        for _ in range(n_per_record):
            shifted = shift_boxes(rec, rng, cfg)
            if shifted is not None:
                out.append(shifted)
    return out
