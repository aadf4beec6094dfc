"""Non-overlapping placement of scene items inside the arm's reach and the camera's view.

Positions are drawn from a numpy Generator, so a layout is a pure function of the seed.
Reach: every object centre (and container centre) lies in the top-down reachable annulus
r in [r_min, r_max] (m, around the base z axis) shrunk by `margin`, in front of the robot
(|bearing| <= max_bearing). Levels draw their "anchor" item (the container, or the target of
rotate / reach) from a radial band given as fractions of that annulus, so L2 can use a band
L1 never uses. Objects are discs of their enclosing radius; containers are axis-aligned
squares (yaw 0). View: the footprint, raised to the item's height, must project inside the
image with a border of `view_margin` (fraction of the image side).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llara_edge.errors import SimError
from llara_edge.sim.catalog import CONTAINERS, OBJECT_HEIGHT


@dataclass(frozen=True)
class Workspace:
    """Annulus (m) and bearing range (rad) in which items may be centred."""

    r_min: float
    r_max: float
    max_bearing: float = math.radians(70)
    margin: float = 0.012  # m kept from both radii (object centres)
    container_margin: float = 0.042  # m kept by container centres (room for place offsets)
    gap: float = 0.01  # m of free table between two items

    def radius_range(self, band: tuple[float, float], container: bool = False
                     ) -> tuple[float, float]:
        """Radial interval for a band given as fractions (lo, hi) of the shrunk annulus."""
        m = self.container_margin if container else self.margin
        lo, hi = self.r_min + m, self.r_max - m
        return lo + band[0] * (hi - lo), lo + band[1] * (hi - lo)


@dataclass(frozen=True)
class Slot:
    """What to place: footprint radius (objects) or container kind, and a radial band."""

    radius: float
    container: str | None = None
    band: tuple[float, float] = (0.0, 1.0)

    @property
    def half(self) -> float:
        return CONTAINERS[self.container].half if self.container else 0.0


def _clearance(a: Slot, pa: np.ndarray, b: Slot, pb: np.ndarray) -> float:
    """Free distance (m) between two placed footprints (negative when they overlap)."""
    if a.container and b.container:
        return float(np.max(np.abs(pa - pb)) - a.half - b.half)
    if a.container or b.container:
        box, pbox, disc, pdisc = (a, pa, b, pb) if a.container else (b, pb, a, pa)
        d = np.maximum(np.abs(pdisc - pbox) - box.half, 0.0)
        return float(np.linalg.norm(d) - disc.radius)
    return float(np.linalg.norm(pa - pb) - a.radius - b.radius)


def _outline(slot: Slot, p: np.ndarray) -> np.ndarray:
    """Points (N, 3) on the footprint outline at floor and top height, for the view check."""
    if slot.container:
        h = slot.half
        xy = p + np.array([[-h, -h], [-h, h], [h, -h], [h, h]])
    else:
        ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        xy = p + slot.radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    top = CONTAINERS[slot.container].floor + CONTAINERS[slot.container].rim_height \
        if slot.container else OBJECT_HEIGHT
    return np.concatenate([np.c_[xy, np.zeros(len(xy))], np.c_[xy, np.full(len(xy), top)]])


InView = Callable[[np.ndarray], bool]  # base-frame points (N, 3) -> all inside the image


def _try_layout(rng: np.random.Generator, ws: Workspace, slots: list[Slot], in_view: InView,
                tries: int) -> list[np.ndarray] | None:
    placed: list[tuple[Slot, np.ndarray]] = []
    for slot in slots:
        lo, hi = ws.radius_range(slot.band, slot.container is not None)
        for _ in range(tries):
            r = math.sqrt(rng.uniform(lo * lo, hi * hi))  # uniform over the band's area
            th = rng.uniform(-ws.max_bearing, ws.max_bearing)
            p = np.array([r * math.cos(th), r * math.sin(th)])
            if all(_clearance(slot, p, s, q) >= ws.gap for s, q in placed) and \
                    in_view(_outline(slot, p)):
                placed.append((slot, p))
                break
        else:
            return None
    return [p for _, p in placed]


def sample_layout(rng: np.random.Generator, ws: Workspace, slots: list[Slot], in_view: InView,
                  restarts: int = 30, tries: int = 200) -> list[np.ndarray]:
    """Centres (2,) for every slot, in order; SimError if they cannot be packed."""
    for _ in range(restarts):
        centres = _try_layout(rng, ws, slots, in_view, tries)
        if centres is not None:
            return centres
    raise SimError(f"could not place {len(slots)} items without overlap in the workspace")
