"""The realistic answer generator (benchmarks/llara_bench/vima_answers.py, vima_tasks.py):
deterministic per seed, its answers parse back to its actions, and its distribution keeps the
bounds and statistics docs/formats.md states (pixel grid, workspace, placeholder boxes at the
image centre, points rarely in the prompt, names not always copied, rotations per task)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from llara_bench.vima_answers import (
    MAX_STEPS,
    answer_for_prompt,
    seeded_answer,
    vima_episode,
)
from llara_bench.vima_tasks import TASKS, H, W, pos2pix_front
from llara_edge.formats import LlaraPrompt, next_step_number, parse_llara_first_step

N = 400
_BOX = re.compile(r"<b>\((\d\.\d{3}), (\d\.\d{3})\), \{(\d\.\d{3}), (\d\.\d{3})\}</b>")


@pytest.fixture(scope="module")
def episodes():
    rng = np.random.default_rng(0)
    return [vima_episode(rng) for _ in range(N)]


def test_same_seed_same_episodes_other_seed_others(episodes):
    rng = np.random.default_rng(0)
    assert [vima_episode(rng) for _ in range(20)] == episodes[:20]
    other = vima_episode(np.random.default_rng(1))
    assert other.user_text != episodes[0].user_text
    text = LlaraPrompt("Put the red block into the green bowl.",
                       {"red block": (0.3, 0.4, 0.08, 0.1),
                        "green bowl": (0.7, 0.55, 0.2, 0.2)}).render()
    assert seeded_answer(text) == seeded_answer(text)


def test_answers_parse_to_their_actions_with_step_numbers(episodes):
    for ep in episodes:
        first = ep.actions[0]
        parsed = parse_llara_first_step(ep.first_line)
        assert (parsed.pick, parsed.place, parsed.rotation_deg, parsed.tool) == \
            (first.pick, first.place, first.rotation_deg, first.tool)
        assert ep.first_line.startswith(f"Step {ep.history + 1}: ")
        assert next_step_number(ep.user_text) == ep.history + 1
        assert len(ep.answer.split("\n")) == len(ep.actions) <= MAX_STEPS
        assert len(first.object_name.encode()) <= 48
        assert "(" + f"{first.pick[0]:.3f},  {first.pick[1]:.3f}" + ")" in ep.first_line


def test_points_lie_on_the_pixel_grid_inside_the_workspace(episodes):
    lo, hi = pos2pix_front(0.25, -0.5), pos2pix_front(0.75, 0.5)
    for ep in episodes:
        for a in ep.actions:
            for x, y in (a.pick, a.place):
                px, py = round(x * W), round(y * H)  # a pixel, written to 3 decimals
                assert (round(px / W, 3), round(py / H, 3)) == (x, y)
                assert lo[0] - 16 <= px <= hi[0] + 16 and lo[1] - 16 <= py <= hi[1] + 16
            assert -180 < a.rotation_deg <= 180


def test_statistics_of_the_distribution(episodes):
    tasks = Counter(ep.task for ep in episodes)
    assert set(tasks) == set(TASKS)  # every VIMA task of LLaRA's evaluation
    # single-object prompt assets are boxed at the image centre (PlaceholderObj's pose)
    centred = [b for ep in episodes if "<scene>" not in ep.user_text
               for b in _BOX.findall(ep.user_text)]
    assert centred and all(b[0] == "0.500" for b in centred)
    # the oracle's points are (almost) never a prompt box's centre
    copied = sum(f"({a.pick[0]:.3f}, {a.pick[1]:.3f})" in ep.user_text.split("</task>")[0]
                 for ep in episodes for a in ep.actions[:1])
    assert copied / N < 0.02
    names = np.mean([ep.name_in_prompt for ep in episodes])
    assert 0.6 < names < 0.9  # novel concepts, same_*, twist, old neighbours: not copied
    for task in ("novel_noun", "same_shape", "twist"):
        assert not any(ep.name_in_prompt for ep in episodes if ep.task == task)
    zero = [ep.actions[0].rotation_deg == 0 for ep in episodes]
    assert 0.25 < np.mean(zero) < 0.6
    for ep in episodes:
        if ep.task.startswith("sweep"):
            assert all(a.tool == "spatula" and a.rotation_deg == 0 for a in ep.actions)
        if ep.task == "rotate":
            angle = int(re.search(r"(\d+) degrees\.</task>", ep.user_text).group(1))
            assert ep.actions[0].rotation_deg in (angle, angle - 1)
    spaces = Counter(ep.user_text.count(",  ") > 0 for ep in episodes if ep.history)
    assert spaces == Counter({True: sum(1 for ep in episodes if ep.history)})


def test_rearrange_places_inside_the_goal_box(episodes):
    for ep in (e for e in episodes if e.task == "rearrange"):
        a = ep.actions[0]
        box = re.search(rf"<p>{re.escape(a.object_name)}</p> at {_BOX.pattern}", ep.user_text)
        cx, cy, w, h = (float(v) for v in box.groups())
        assert abs(a.place[0] - cx) <= w / 2 + 1 / W and abs(a.place[1] - cy) <= h / 2 + 1 / H


def test_answer_for_a_prompt_boxing_objects_where_they_stand():
    text = LlaraPrompt("Put the red block into the green bowl.",
                       {"red block": (0.3, 0.4, 0.08, 0.1),
                        "green bowl": (0.7, 0.55, 0.2, 0.2)}).render()
    rotate = LlaraPrompt("Rotate the blue pentagon 120 degrees.",
                         {"blue pentagon": (0.6, 0.45, 0.07, 0.1)}).render()
    rng = np.random.default_rng(3)
    rots = []
    for _ in range(50):
        a = parse_llara_first_step(answer_for_prompt(text, rng))
        assert a.object_name == "red block"
        assert abs(a.pick[0] - 0.3) <= 0.0405 and abs(a.pick[1] - 0.4) <= 0.0505
        assert abs(a.place[0] - 0.7) <= 0.1 and abs(a.place[1] - 0.55) <= 0.1
        rots.append(a.rotation_deg)
        r = parse_llara_first_step(answer_for_prompt(rotate, rng))
        assert r.rotation_deg in (119, 120) and abs(r.place[0] - r.pick[0]) <= 0.021
    assert len(set(rots)) > 30  # a random target yaw, not a constant
    assert answer_for_prompt(text, rng).startswith("Step 1: Pick up the <p>red block</p> at <b>(")
