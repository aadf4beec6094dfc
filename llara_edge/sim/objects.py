"""Scene items (objects and containers) and their MJCF.

A `SceneItem` is one named thing on the table ("red block", "green pan") with its pose on the
table: centre (x, y) in the base frame (m) and yaw (rad, counter-clockwise seen from above).
Objects are free bodies (picked by suction); containers are static bodies. MJCF body names
are `obj_{i}` / `box_{i}`; geoms of objects live in group 2, of containers in group 1, so
ray casts can look for objects only.
"""

from __future__ import annotations

from dataclasses import dataclass

from llara_edge.sim.catalog import COLOURS, CONTAINERS, OBJECT_HEIGHT, SHAPES, Part

OBJECT_GROUP = 2
CONTAINER_GROUP = 1
OBJECT_DENSITY = 500.0  # kg/m^3: a 3.5 cm wooden block weighs ~20 g


@dataclass(frozen=True)
class SceneItem:
    """One object or container of a scene, as sampled by a task."""

    colour: str
    kind: str  # a shape name for objects, a container name for containers
    x: float
    y: float
    yaw: float = 0.0

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}")
        if self.kind not in SHAPES and self.kind not in CONTAINERS:
            raise ValueError(f"unknown shape or container {self.kind!r}")

    @property
    def name(self) -> str:
        """Natural-language name used in instructions and prompts, e.g. 'red block'."""
        return f"{self.colour} {self.kind}"

    @property
    def is_container(self) -> bool:
        return self.kind in CONTAINERS

    @property
    def radius(self) -> float:
        """Radius (m) of a disc that encloses the footprint, whatever the yaw."""
        if self.is_container:
            return CONTAINERS[self.kind].half * 1.4143
        return SHAPES[self.kind].radius


def _fmt(values) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _rgba(colour: str) -> str:
    return _fmt(COLOURS[colour])


def mesh_name(shape: str, part_index: int) -> str:
    return f"mesh_{shape}_{part_index}"


def object_assets(shapes: set[str]) -> list[str]:
    """MJCF <mesh> assets for the prism parts of the given shapes (vertices only: MuJoCo
    builds the convex hull, which is the prism itself)."""
    out = []
    half = OBJECT_HEIGHT / 2
    for shape in sorted(shapes):
        for k, part in enumerate(SHAPES[shape].parts):
            if part.kind != "prism":
                continue
            verts = [(x, y, z) for z in (-half, half) for (x, y) in part.polygon]
            flat = [c for v in verts for c in v]
            out.append(f'<mesh name="{mesh_name(shape, k)}" vertex="{_fmt(flat)}"/>')
    return out


def _part_geom(name: str, shape: str, k: int, part: Part, rgba: str) -> str:
    half = OBJECT_HEIGHT / 2
    common = (f'name="{name}" rgba="{rgba}" group="{OBJECT_GROUP}" density="{OBJECT_DENSITY}" '
              f'euler="0 0 {part.yaw:.6g}"')
    if part.kind == "box":
        return f'<geom type="box" size="{_fmt((*part.size, half))}" {common}/>'
    if part.kind == "cylinder":
        return f'<geom type="cylinder" size="{_fmt((part.size[0], half))}" {common}/>'
    return f'<geom type="mesh" mesh="{mesh_name(shape, k)}" {common}/>'


def object_body(index: int, item: SceneItem) -> str:
    """MJCF of a free object body resting on the table."""
    name = f"obj_{index}"
    geoms = "".join(_part_geom(f"{name}_g{k}", item.kind, k, part, _rgba(item.colour))
                    for k, part in enumerate(SHAPES[item.kind].parts))
    pos = _fmt((item.x, item.y, OBJECT_HEIGHT / 2))
    return (f'<body name="{name}" pos="{pos}" euler="0 0 {item.yaw:.6g}">'
            f'<freejoint name="{name}_free"/>{geoms}</body>')


def container_body(index: int, item: SceneItem) -> str:
    """MJCF of a static container: a floor plate, plus four rims for a pan."""
    kind = CONTAINERS[item.kind]
    name = f"box_{index}"
    rgba = _rgba(item.colour)
    attrs = f'rgba="{rgba}" group="{CONTAINER_GROUP}"'
    floor = _fmt((kind.half, kind.half, kind.floor / 2))
    geoms = [f'<geom name="{name}_floor" type="box" size="{floor}" '
             f'pos="0 0 {kind.floor / 2:.6g}" {attrs}/>']
    if kind.rim_height > 0:
        hz = (kind.floor + kind.rim_height) / 2
        off = kind.half - kind.rim_width / 2
        for k, (px, py, sx, sy) in enumerate((
                (off, 0, kind.rim_width / 2, kind.half), (-off, 0, kind.rim_width / 2, kind.half),
                (0, off, kind.half, kind.rim_width / 2), (0, -off, kind.half, kind.rim_width / 2))):
            geoms.append(f'<geom name="{name}_rim{k}" type="box" size="{_fmt((sx, sy, hz))}" '
                         f'pos="{_fmt((px, py, hz))}" {attrs}/>')
    return (f'<body name="{name}" pos="{_fmt((item.x, item.y, 0.0))}" '
            f'euler="0 0 {item.yaw:.6g}">{"".join(geoms)}</body>')
