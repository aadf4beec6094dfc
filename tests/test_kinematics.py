"""SO-101 kinematics: published geometry, Jacobian, IK round trips, unreachable targets."""

import math

import mujoco
import numpy as np
import pytest

from llara_edge.errors import ConfigError, GeometryError
from llara_edge.geometry.kinematics import ArmKinematics, wrap_angle


@pytest.fixture(scope="module")
def kin():
    return ArmKinematics.so101()


# The body chain of TheRobotStudio/SO-ARM100 Simulation/SO101/so101_new_calib.xml, numbers
# copied verbatim (base frame 38.84 mm behind the pan axis), with a site on the wrist_roll
# axis 45 mm out: an independent statement of the geometry our table must reproduce.
PUBLISHED_CHAIN = """
<mujoco><worldbody><body name="base">
 <body name="shoulder" pos="0.0388353 -8.97657e-09 0.0624"
       quat="3.56167e-16 1.22818e-15 -1 -4.14635e-16">
  <joint name="shoulder_pan" axis="0 0 1"/><geom size="0.01" mass="0.1"/>
  <body name="upper_arm" pos="-0.0303992 -0.0182778 -0.0542" quat="0.5 -0.5 -0.5 -0.5">
   <joint name="shoulder_lift" axis="0 0 1"/><geom size="0.01" mass="0.1"/>
   <body name="lower_arm" pos="-0.11257 -0.028 1.73763e-16"
         quat="0.707107 -5.98613e-17 -2.58051e-17 0.707107">
    <joint name="elbow_flex" axis="0 0 1"/><geom size="0.01" mass="0.1"/>
    <body name="wrist" pos="-0.1349 0.0052 3.62355e-17"
          quat="0.707107 9.58722e-16 -7.51313e-16 -0.707107">
     <joint name="wrist_flex" axis="0 0 1"/><geom size="0.01" mass="0.1"/>
     <body name="gripper" pos="5.55112e-17 -0.0611 0.0181"
           quat="0.0172091 -0.0172091 0.706897 0.706897">
      <joint name="wrist_roll" axis="0 0 1"/><geom size="0.01" mass="0.1"/>
      <site name="tip" pos="0 0 -0.045"/>
     </body></body></body></body></body></body></worldbody></mujoco>
"""


def test_table_is_the_published_so101(kin):
    assert kin.joint_names == ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex",
                               "wrist_roll")
    assert kin.motors[-1] == ("gripper", 6)
    assert [sid for _, sid in kin.motors] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(kin.upper, [1.91986, 1.74533, 1.69, 1.65806, 2.79253])
    np.testing.assert_allclose(kin.lower, -kin.upper)
    model = mujoco.MjModel.from_xml_string(PUBLISHED_CHAIN)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(3)
    for _ in range(100):
        q = rng.uniform(kin.lower, kin.upper)
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        published = data.site_xpos[0] - (0.0388353, 0.0, 0.0)
        # Differences come from the 6-digit published quaternions and the snapped angles.
        np.testing.assert_allclose(kin.fk(q)[:3, 3], published, atol=2e-5)


def test_jacobian_matches_finite_differences(kin):
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(kin.lower, kin.upper)
        jac = kin.jacobian(q)
        t0 = kin.fk(q)
        for i in range(5):
            dq = np.zeros(5)
            dq[i] = 1e-6
            t1 = kin.fk(q + dq)
            np.testing.assert_allclose((t1[:3, 3] - t0[:3, 3]) / 1e-6, jac[:3, i], atol=1e-5)
            skew = (t1[:3, :3] - t0[:3, :3]) / 1e-6 @ t0[:3, :3].T
            omega = np.array([skew[2, 1], skew[0, 2], skew[1, 0]])
            np.testing.assert_allclose(omega, jac[3:, i], atol=1e-5)


def test_tool_down_yaw_is_roll_minus_pan(kin):
    q = kin.ik((0.18, 0.05, 0.02), yaw_rad=0.3)
    for d_pan, d_roll in ((0.2, 0.0), (0.0, -0.5), (0.3, 0.4)):
        q2 = q + np.array([d_pan, 0, 0, 0, d_roll])
        assert wrap_angle(kin.tool_yaw(q2) - 0.3 - (d_roll - d_pan)) == pytest.approx(0, abs=1e-9)


def test_ik_round_trip_on_reachable_grid(kin):
    ws = kin.top_down_workspace()
    n, worst_pos, worst_axis, worst_yaw = 0, 0.0, 0.0, 0.0
    for r in np.linspace(ws.r_min, ws.r_max, 5):
        for az in np.linspace(-ws.azimuth_max, ws.azimuth_max, 5):
            for z in (0.0, 0.04, 0.08):
                target = np.array([r * math.cos(az), r * math.sin(az), z])
                for rel_yaw in (-2.5, -1.0, 0.0, 0.7, 2.5):  # wrist_roll ~ rel_yaw
                    yaw = wrap_angle(az + rel_yaw)
                    q = kin.ik(target, yaw_rad=yaw)
                    pose = kin.fk(q)
                    assert kin.within_limits(q)
                    worst_pos = max(worst_pos, float(np.linalg.norm(pose[:3, 3] - target)))
                    worst_axis = max(worst_axis, math.acos(min(1.0, -pose[2, 2])))
                    worst_yaw = max(worst_yaw, abs(wrap_angle(kin.tool_yaw(q) - yaw)))
                    n += 1
    assert n == 375
    assert worst_pos < 1e-3
    assert math.degrees(worst_axis) < 1.0
    assert math.degrees(worst_yaw) < 1.0


def test_ik_without_yaw_keeps_the_seed_roll(kin):
    q0 = kin.home.copy()
    q0[4] = 1.1
    q = kin.ik((0.2, -0.05, 0.03), q0=q0)
    assert q[4] == pytest.approx(1.1, abs=1e-9)


def test_ik_position_only_reaches_beyond_the_top_down_region(kin):
    for target in ((0.33, 0.0, 0.05), (0.12, 0.05, 0.25)):
        assert not kin.reachable_top_down(*target)
        q = kin.ik(target, tool_down=False)
        assert np.linalg.norm(kin.fk(q)[:3, 3] - target) < 1e-3
        assert kin.within_limits(q)


@pytest.mark.parametrize(("target", "words"), [
    ((0.60, 0.0, 0.02), "beyond the arm's reach"),
    ((0.34, 0.0, 0.02), "no IK solution"),
    ((0.20, 0.0, -0.01), "below the table"),
    ((-0.20, 0.0, 0.02), "no IK solution"),  # behind the base: outside the pan range
    ((0.15, 0.0, 0.30), "no IK solution"),  # above the top-down workspace
    ((0.01, 0.0, 0.02), "no IK solution"),  # inside the base
])
def test_ik_raises_for_unreachable_targets(kin, target, words):
    with pytest.raises(GeometryError, match=words):
        kin.ik(target)


def test_ik_rejects_bad_arguments(kin):
    with pytest.raises(ConfigError):
        kin.ik((0.2, 0.0, 0.02), yaw_rad=0.0, tool_down=False)
    with pytest.raises(ConfigError):
        kin.ik((0.2, 0.0))
    with pytest.raises(ConfigError):
        kin.fk(np.zeros(4))


def test_workspace_annulus_is_measured_and_tight(kin):
    ws = kin.top_down_workspace()
    assert 0.04 < ws.r_min < ws.r_max < 0.30
    assert (ws.z_min, ws.z_max) == (0.0, 0.08)
    rng = np.random.default_rng(7)
    for _ in range(60):
        r, az = rng.uniform(ws.r_min, ws.r_max), rng.uniform(-ws.azimuth_max, ws.azimuth_max)
        z = rng.uniform(ws.z_min, ws.z_max)
        assert ws.contains(r * math.cos(az), r * math.sin(az), z)
        assert kin.reachable_top_down(r * math.cos(az), r * math.sin(az), z)
    # Just outside the annulus, at the height that limits each radius, nothing is reachable.
    heights = np.linspace(0.0, 0.08, 5)
    assert any(not kin.reachable_top_down(ws.r_min - 0.01, 0.0, z) for z in heights)
    assert any(not kin.reachable_top_down(ws.r_max + 0.01, 0.0, z) for z in heights)
