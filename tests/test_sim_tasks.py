"""Task registry, levels, held-out combinations and layouts (no physics, no rendering)."""

import math
import re

import numpy as np
import pytest

from llara_edge.errors import SimError
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.sim.catalog import (
    COLOUR_NAMES,
    HELD_OUT_COMBOS,
    SEEN_COMBOS,
    SHAPE_NAMES,
    is_held_out,
)
from llara_edge.sim.config import SimConfig
from llara_edge.sim.layout import Slot, Workspace, _clearance
from llara_edge.sim.tasks import LEVELS, TASK_FAMILIES, TASK_REGISTRY, sample_task
from llara_edge.sim.view import ViewCheck

WS = Workspace(0.09, 0.267)

TEMPLATES = {
    "visual_manipulation": r"Put the (\w+ \w+) into the (\w+ \w+)\.",
    "rotate": r"Rotate the (\w+ \w+) (\d+) degrees\.",
    "scene_understanding": r"Put all the (\w+) objects into the (\w+ \w+)\.",
    "reach": r"Reach the (\w+ \w+)\.",
}


@pytest.fixture(scope="module")
def view():
    return ViewCheck(SimConfig(width=160, height=120), ArmKinematics.so101())


def test_registry_is_complete():
    assert set(TASK_FAMILIES) == set(TEMPLATES) and LEVELS == ("L1", "L2", "L3")
    assert all(spec.control in ("pick_place", "joint") for spec in TASK_REGISTRY.values())
    assert TASK_REGISTRY["reach"].control == "joint"


def test_held_out_split_is_balanced():
    assert len(HELD_OUT_COMBOS) == 16 and len(SEEN_COMBOS) == 48
    for c in COLOUR_NAMES:
        assert sum(is_held_out(c, s) for s in SHAPE_NAMES) == 2
    for s in SHAPE_NAMES:
        assert sum(is_held_out(c, s) for c in COLOUR_NAMES) == 2


def test_same_seed_same_task_different_seed_different(view):
    for fam in TASK_FAMILIES:
        a = sample_task(fam, "L1", 7, WS, view)
        assert a == sample_task(fam, "L1", 7, WS, view)
        assert a != sample_task(fam, "L1", 8, WS, view)


@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_instruction_strings(family, view):
    for seed in range(5):
        t = sample_task(family, "L1", seed, WS, view)
        m = re.fullmatch(TEMPLATES[family], t.instruction)
        assert m, t.instruction
        names = {it.name for it in t.items}
        assert set(t.names) <= names
        if family == "rotate":
            assert int(m.group(2)) == t.rotation_deg and t.rotation_deg % 30 == 0
        if family == "scene_understanding":
            colour = m.group(1)
            assert 2 <= len(t.targets) <= 3 and t.max_steps == len(t.targets) + 2
            objs = [it for it in t.items if not it.is_container]
            assert {it.name for it in objs if it.colour == colour} == set(t.targets)
        else:
            assert t.targets[0] in t.instruction


def test_held_out_combos_only_at_l3(view):
    for fam in TASK_FAMILIES:
        for seed in range(60):
            for level in ("L1", "L2"):
                t = sample_task(fam, level, seed, WS, view)
                objs = [(it.colour, it.kind) for it in t.items if not it.is_container]
                assert not any(is_held_out(c, s) for c, s in objs), (fam, level, seed)
            t3 = sample_task(fam, "L3", seed, WS, view)
            for name in t3.targets:
                it = t3.item(name)
                assert is_held_out(it.colour, it.kind)


def test_layout_non_overlapping_reachable_visible(view):
    for fam in TASK_FAMILIES:
        for level in LEVELS:
            for seed in range(8):
                t = sample_task(fam, level, seed, WS, view)
                slots = [(Slot(it.radius, it.kind if it.is_container else None),
                          np.array([it.x, it.y])) for it in t.items]
                for i, (a, pa) in enumerate(slots):
                    r = math.hypot(*pa)
                    assert WS.r_min <= r <= WS.r_max
                    assert abs(math.atan2(pa[1], pa[0])) <= WS.max_bearing + 1e-9
                    for b, pb in slots[i + 1:]:
                        assert _clearance(a, pa, b, pb) >= WS.gap - 1e-9


def test_l2_anchor_uses_a_band_l1_never_uses(view):
    for fam in TASK_FAMILIES:
        for seed in range(15):
            r = {}
            for level in ("L1", "L2"):
                t = sample_task(fam, level, seed, WS, view)
                anchor = t.item(t.container if t.container else t.targets[0])
                r[level] = (math.hypot(anchor.x, anchor.y), anchor.is_container)
            lo1 = WS.radius_range((0.45, 1.0), r["L1"][1])[0]
            assert r["L1"][0] >= lo1 - 1e-9 and r["L2"][0] <= lo1 + 1e-9


def test_bad_requests_raise(view):
    with pytest.raises(SimError):
        sample_task("stack", "L1", 0, WS, view)
    with pytest.raises(SimError):
        sample_task("rotate", "L4", 0, WS, view)
    with pytest.raises(SimError):
        sample_task("rotate", "L1", -1, WS, view)


def test_l2_pairs_objects_and_containers_differently(view):
    from llara_edge.sim.catalog import CONTAINER_NAMES

    for level, parity in (("L1", 0), ("L2", 1)):
        for seed in range(20):
            t = sample_task("visual_manipulation", level, seed, WS, view)
            obj, box = t.item(t.targets[0]), t.item(t.container)
            k = SHAPE_NAMES.index(obj.kind) + CONTAINER_NAMES.index(box.kind)
            assert k % 2 == parity
