"""The scripted expert solves every family and level through the image-point primitive."""

import math

import pytest

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.sim import LEVELS, TASK_FAMILIES, ScriptedExpert, SimConfig, TabletopEnv


@pytest.fixture(scope="module")
def env():
    e = TabletopEnv(SimConfig(width=160, height=120))
    yield e
    e.close()


def run_episode(env, family, level, seed):
    env.reset(family, level, seed)
    expert = ScriptedExpert(env)
    actions = []
    while True:
        action = expert.act()
        actions.append(action)
        out = env.execute(action)
        if out.done:
            return out, actions


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_expert_succeeds(env, family, level):
    for seed in range(3):
        out, actions = run_episode(env, family, level, seed)
        assert out.success, (family, level, seed, env.task.instruction, out.info)
        assert env.success() and out.info["failure"] is None
        kind = JointStepAction if family == "reach" else PickPlaceAction
        assert all(isinstance(a, kind) for a in actions)


def test_expert_actions_fit_the_text_format(env):
    _, actions = run_episode(env, "scene_understanding", "L1", 0)
    assert all(round(v, 3) == v for a in actions for v in (*a.pick, *a.place))
    _, steps = run_episode(env, "reach", "L1", 0)
    assert all(round(v, 4) == v for a in steps for v in a.joints)


def test_rotation_is_clockwise_from_above(env):
    out, _ = run_episode(env, "rotate", "L1", 2)
    name = env.task.targets[0]
    turned = env.world.poses()[name].yaw - env.world.start[name].yaw
    expect = -env.task.rotation_deg  # clockwise seen from above = negative yaw
    err = (math.degrees(turned) - expect + 180) % 360 - 180
    assert out.success and abs(err) < 12


@pytest.mark.slow
@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_expert_succeeds_many_seeds(env, family):
    for level in LEVELS:
        for seed in range(3, 30):
            out, _ = run_episode(env, family, level, seed)
            assert out.success, (family, level, seed, env.task.instruction, out.info)
