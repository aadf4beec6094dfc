"""Catalogue of the tabletop world: colours, object shapes, container kinds, held-out combos.

Everything here is data. Sizes are metres in the object's own frame (x forward, y left, z up),
with the body origin at the centre of the object's footprint, half-way up its height, so a
resting object has z = height / 2. Shapes are prisms the suction cup can pick from the top:
the top face is flat and contains the footprint centre (no rings).

Held-out split (L3): colour i x shape j is held out when (i + j) % 4 == 0. Each colour then
has exactly two held-out shapes and each shape two held-out colours, so L1/L2 still see every
colour and every shape, only never those combinations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# name -> RGBA in [0, 1]; distinct under the default lighting.
COLOURS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.10, 1.0),
    "green": (0.15, 0.65, 0.20, 1.0),
    "blue": (0.12, 0.25, 0.85, 1.0),
    "yellow": (0.95, 0.85, 0.10, 1.0),
    "purple": (0.50, 0.18, 0.70, 1.0),
    "orange": (0.98, 0.50, 0.05, 1.0),
    "cyan": (0.10, 0.80, 0.85, 1.0),
    "pink": (0.98, 0.50, 0.70, 1.0),
}

OBJECT_HEIGHT = 0.025  # m, every object shape is a prism this tall


def _polygon(n: int, radius: float, phase: float = 0.0) -> tuple[tuple[float, float], ...]:
    """Regular n-gon vertices (x, y) with circumradius `radius`, first vertex at `phase` rad."""
    return tuple((radius * math.cos(phase + 2 * math.pi * k / n),
                  radius * math.sin(phase + 2 * math.pi * k / n)) for k in range(n))


@dataclass(frozen=True)
class Part:
    """One convex piece of a shape: a box (half sizes), a cylinder or a polygon prism."""

    kind: str  # "box" | "cylinder" | "prism"
    size: tuple[float, ...] = ()  # box: (hx, hy); cylinder: (radius,)
    polygon: tuple[tuple[float, float], ...] = ()  # prism: footprint vertices (x, y)
    yaw: float = 0.0  # rad, rotation of the part about the body z axis


@dataclass(frozen=True)
class Shape:
    """An object shape: its convex parts and the radius of a disc enclosing its footprint."""

    parts: tuple[Part, ...]
    radius: float  # m, used for non-overlapping placement and the suction check


SHAPES: dict[str, Shape] = {
    "block": Shape((Part("box", (0.015, 0.015)),), 0.0213),
    "cylinder": Shape((Part("cylinder", (0.016,)),), 0.016),
    "triangle": Shape((Part("prism", polygon=_polygon(3, 0.021, math.pi / 2)),), 0.021),
    "hexagon": Shape((Part("prism", polygon=_polygon(6, 0.018)),), 0.018),
    "pentagon": Shape((Part("prism", polygon=_polygon(5, 0.019, math.pi / 2)),), 0.019),
    "cross": Shape((Part("box", (0.019, 0.007)), Part("box", (0.007, 0.019))), 0.0203),
    "star": Shape((Part("prism", polygon=_polygon(3, 0.021, math.pi / 2)),
                   Part("prism", polygon=_polygon(3, 0.021, -math.pi / 2))), 0.021),
    "diamond": Shape((Part("prism", polygon=((0.021, 0.0), (0.0, 0.013), (-0.021, 0.0),
                                             (0.0, -0.013))),), 0.021),
}


@dataclass(frozen=True)
class ContainerKind:
    """A container: square footprint of half size `half` (m), optional rim, floor height."""

    half: float  # m, half side of the outer square
    floor: float  # m, height of the surface an object rests on inside
    rim_height: float  # m, 0 for a flat zone
    rim_width: float  # m


CONTAINERS: dict[str, ContainerKind] = {
    "pan": ContainerKind(half=0.055, floor=0.004, rim_height=0.016, rim_width=0.005),
    "zone": ContainerKind(half=0.05, floor=0.001, rim_height=0.0, rim_width=0.0),
}

COLOUR_NAMES = tuple(COLOURS)
SHAPE_NAMES = tuple(SHAPES)
CONTAINER_NAMES = tuple(CONTAINERS)


def is_held_out(colour: str, shape: str) -> bool:
    """True for colour x shape combinations reserved for level L3."""
    return (COLOUR_NAMES.index(colour) + SHAPE_NAMES.index(shape)) % 4 == 0


SEEN_COMBOS: tuple[tuple[str, str], ...] = tuple(
    (c, s) for c in COLOUR_NAMES for s in SHAPE_NAMES if not is_held_out(c, s))
HELD_OUT_COMBOS: tuple[tuple[str, str], ...] = tuple(
    (c, s) for c in COLOUR_NAMES for s in SHAPE_NAMES if is_held_out(c, s))
