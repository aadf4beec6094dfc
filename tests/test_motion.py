"""Motion plans: limits, contact points, clockwise rotation, straight descents, timing."""

import math

import numpy as np
import pytest

from llara_edge.errors import ConfigError, GeometryError
from llara_edge.geometry.kinematics import ArmKinematics, wrap_angle
from llara_edge.geometry.motion import (
    MotionConfig,
    Waypoint,
    interpolate,
    plan_pick_place,
    plan_reach,
    plan_sweep,
)

PICK = (0.20, 0.06, 0.03)
PLACE = (0.15, -0.13, 0.0)


@pytest.fixture(scope="module")
def kin():
    return ArmKinematics.so101()


@pytest.fixture(scope="module")
def cfg():
    return MotionConfig()


def _suction_edges(plan):
    """Indices where suction switches on and off."""
    flags = [wp.suction for wp in plan]
    on = [i for i in range(1, len(flags)) if flags[i] and not flags[i - 1]]
    off = [i for i in range(1, len(flags)) if flags[i - 1] and not flags[i]]
    return on, off


@pytest.mark.parametrize("bad", [
    {"approach_height_m": 0.0}, {"travel_speed_rad_s": -1.0}, {"suction_settle_s": -0.1},
    {"min_clearance_m": 0.2}, {"cartesian_step_m": 0.0},
])
def test_config_is_validated(bad):
    with pytest.raises(ConfigError):
        MotionConfig(**bad)


def test_waypoint_is_validated():
    with pytest.raises(ConfigError):
        Waypoint(np.array([0.0, np.nan, 0, 0, 0]), False, 1.0)
    with pytest.raises(ConfigError):
        Waypoint(np.zeros(5), False, -1.0)


def test_pick_place_sequence(kin, cfg):
    plan = plan_pick_place(kin, kin.home, PICK, PLACE, 0, cfg)
    assert all(kin.within_limits(wp.q) for wp in plan)
    assert not plan[-1].via and np.allclose(plan[-1].q, kin.home)
    (on,), (off,) = _suction_edges(plan)
    contact, release = kin.fk(plan[on].q), kin.fk(plan[off].q)
    np.testing.assert_allclose(contact[:3, 3], PICK, atol=1e-3)
    # Object rests on the table by default: released pick height + 5 mm above the place.
    np.testing.assert_allclose(release[:3, 3], np.add(PLACE, (0, 0, 0.035)), atol=1e-3)
    assert contact[2, 2] < -math.cos(math.radians(1)) and release[2, 2] < -math.cos(
        math.radians(1))
    assert plan[on].duration_s == cfg.suction_settle_s  # dwell at contact, suction on
    assert np.allclose(plan[on].q, plan[on - 1].q)
    # The approach above the pick point is the configured height (reachable here).
    above = kin.fk(plan[0].q)[:3, 3]
    np.testing.assert_allclose(above, np.add(PICK, (0, 0, cfg.approach_height_m)), atol=1e-3)


def test_descents_are_straight_and_vertical(kin, cfg):
    plan = plan_pick_place(kin, kin.home, PICK, PLACE, 45, cfg)
    (on,), _ = _suction_edges(plan)
    descent = [kin.fk(wp.q) for wp in plan[:on]]
    xy = np.array([t[:2, 3] for t in descent])
    np.testing.assert_allclose(xy, np.tile(PICK[:2], (len(xy), 1)), atol=1e-3)
    assert all(t[2, 2] < -0.9998 for t in descent)
    assert sum(wp.via for wp in plan[:on]) >= 3  # via points, so one smooth profile


@pytest.mark.parametrize("rotation", [0, 90, -90, 180, 270, -359, 359, 135])
def test_rotation_is_clockwise_seen_from_above(kin, cfg, rotation):
    plan = plan_pick_place(kin, kin.home, PICK, PLACE, rotation, cfg)
    (on,), (off,) = _suction_edges(plan)
    turned = kin.tool_yaw(plan[off].q) - kin.tool_yaw(plan[on].q)
    # Clockwise from above is a negative turn about +z.
    assert wrap_angle(turned + math.radians(rotation)) == pytest.approx(0.0, abs=1e-4)
    assert all(kin.within_limits(wp.q) for wp in plan)


def test_object_yaw_is_kept_during_the_transfer(kin, cfg):
    plan = plan_pick_place(kin, kin.home, (0.2, 0.15, 0.03), (0.15, -0.15, 0.0), 30, cfg)
    (on,), _ = _suction_edges(plan)
    held = [wp for wp in plan[on:] if wp.suction]
    # Up to the waypoint above the place point (before the wrist turns) the yaw is constant.
    yaws = [kin.tool_yaw(wp.q) for wp in held]
    turn_index = next(i for i, y in enumerate(yaws) if abs(wrap_angle(y - yaws[0])) > 1e-3)
    assert abs(wrap_angle(yaws[turn_index] - yaws[0] + math.radians(30))) < 1e-4
    assert turn_index >= 3


def test_unreachable_pick_raises(kin, cfg):
    with pytest.raises(GeometryError):
        plan_pick_place(kin, kin.home, (0.45, 0.0, 0.03), PLACE, 0, cfg)
    with pytest.raises(GeometryError):
        plan_pick_place(kin, kin.home, PICK, (-0.2, 0.0, 0.0), 0, cfg)


def test_interpolation_respects_speed_and_hits_waypoints(kin, cfg):
    plan = plan_pick_place(kin, kin.home, PICK, PLACE, 90, cfg)
    dt = 0.004
    traj = interpolate(plan, kin.home, dt)
    assert traj.q.shape == (len(traj.t), 5) and traj.suction.shape == traj.t.shape
    np.testing.assert_allclose(traj.q[0], kin.home)
    np.testing.assert_allclose(traj.q[-1], plan[-1].q)
    assert traj.t[-1] == pytest.approx(sum(wp.duration_s for wp in plan))
    speed = np.abs(np.diff(traj.q, axis=0)) / np.diff(traj.t)[:, None]
    assert speed.max() <= cfg.travel_speed_rad_s * (1 + 1e-9)
    # Plain waypoints are passed at their cumulative times, at rest (min-jerk ends).
    times = np.cumsum([wp.duration_s for wp in plan])
    for wp, t in zip(plan, times, strict=True):
        if not wp.via:
            k = int(np.argmin(np.abs(traj.t - t)))
            assert np.max(np.abs(traj.q[k] - wp.q)) < 1e-3
    # Suction is on exactly while the plan says so.
    assert traj.suction.any() and not traj.suction[0] and not traj.suction[-1]


def test_interpolation_is_smooth(kin, cfg):
    plan = plan_pick_place(kin, kin.home, PICK, PLACE, -60, cfg)
    dt = 0.002
    traj = interpolate(plan, kin.home, dt)
    vel = np.diff(traj.q, axis=0) / dt
    acc = np.diff(vel, axis=0) / dt
    # Min-jerk over <= 2 rad/s moves of >= 0.15 s: bounded acceleration, no steps in velocity.
    assert np.abs(acc).max() < 60.0
    assert np.abs(np.diff(vel, axis=0)).max() < 0.2


def test_interpolate_stretches_too_fast_segments():
    plan = [Waypoint(np.array([1.0, 0, 0, 0, 0]), False, 0.1)]
    traj = interpolate(plan, np.zeros(5), 0.001, max_speed_rad_s=1.0)
    assert traj.t[-1] == pytest.approx(1.875)
    assert np.abs(np.diff(traj.q[:, 0])).max() / 0.001 <= 1.0 + 1e-9
    with pytest.raises(ConfigError):
        interpolate([Waypoint(np.zeros(5), False, 1.0, via=True)], np.zeros(5), 0.01)


def test_sweep_runs_low_and_straight(kin, cfg):
    start, stop = (0.14, -0.05, 0.02), (0.22, 0.05, 0.02)
    plan = plan_sweep(kin, kin.home, start, stop, cfg)
    assert all(kin.within_limits(wp.q) for wp in plan) and not any(wp.suction for wp in plan)
    tips = np.array([kin.fk(wp.q)[:3, 3] for wp in plan])
    low = tips[np.abs(tips[:, 2] - cfg.sweep_height_m) < 1e-3]
    direction = np.subtract(stop, start)[:2] / np.linalg.norm(np.subtract(stop, start)[:2])
    back = cfg.sweep_backoff_m * direction
    np.testing.assert_allclose(low[0, :2], np.subtract(start[:2], back), atol=1e-3)
    np.testing.assert_allclose(low[-1, :2], np.subtract(stop[:2], back), atol=1e-3)
    # Every low point lies on the start -> stop line.
    rel = low[:, :2] - low[0, :2]
    assert np.abs(rel[:, 0] * direction[1] - rel[:, 1] * direction[0]).max() < 1e-3


def test_reach_ends_on_target(kin, cfg):
    target = (0.30, 0.05, 0.10)  # outside the top-down region: joint-space reach only
    plan = plan_reach(kin, kin.home, target, cfg)
    assert len(plan) == 1
    np.testing.assert_allclose(kin.fk(plan[-1].q)[:3, 3], target, atol=1e-3)
    with pytest.raises(GeometryError):
        plan_reach(kin, kin.home, (0.7, 0.0, 0.1), cfg)
