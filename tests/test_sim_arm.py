"""The MuJoCo arm: same kinematics as geometry/kinematics.py, contacts, servo tracking."""

import math

import mujoco
import numpy as np
import pytest

from llara_edge.errors import ConfigError, SimError
from llara_edge.geometry.kinematics import ArmKinematics, rpy_matrix
from llara_edge.geometry.motion import MotionConfig, interpolate, plan_pick_place
from llara_edge.sim.arm import ArmIndex, ArmMjcfConfig, arm_mjcf, arm_only_model


@pytest.fixture(scope="module")
def kin():
    return ArmKinematics.so101()


@pytest.fixture(scope="module")
def model(kin):
    return arm_only_model(kin)


def _placed_model(kin, angle_unit, base_pos, base_yaw):
    frag = arm_mjcf(kin, "left", base_pos=base_pos, base_yaw=base_yaw, angle_unit=angle_unit)
    xml = (f'<mujoco><compiler angle="{angle_unit}"/><worldbody>{frag.body_xml}</worldbody>'
           f"<actuator>{frag.actuator_xml}</actuator></mujoco>")
    return mujoco.MjModel.from_xml_string(xml)


def test_fk_matches_mujoco_site(kin, model):
    data = mujoco.MjData(model)
    idx = ArmIndex.from_model(model, kin)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(300):
        q = rng.uniform(kin.lower, kin.upper)
        data.qpos[idx.qpos_adr[:5]] = q
        data.qpos[idx.qpos_adr[5]] = rng.uniform(kin.jaw.lower, kin.jaw.upper)
        mujoco.mj_kinematics(model, data)
        worst = max(worst, float(np.abs(idx.tool_pose(data) - kin.fk(q)).max()))
    assert worst < 1e-6


@pytest.mark.parametrize("angle_unit", ["radian", "degree"])
def test_placed_arm_in_any_compiler_unit(kin, angle_unit):
    base_pos, base_yaw = np.array([0.1, -0.2, 0.05]), 0.4
    model = _placed_model(kin, angle_unit, base_pos, base_yaw)
    idx = ArmIndex.from_model(model, kin, "left")
    data = mujoco.MjData(model)
    q = np.array([0.3, -0.2, 0.5, 1.0, -0.7])
    data.qpos[idx.qpos_adr[:5]] = q
    mujoco.mj_kinematics(model, data)
    world = np.eye(4)
    world[:3, :3], world[:3, 3] = rpy_matrix((0.0, 0.0, base_yaw)), base_pos
    np.testing.assert_allclose(idx.tool_pose(data), world @ kin.fk(q), atol=1e-9)


def test_index_rejects_a_mismatched_model(kin):
    frag = arm_mjcf(kin)  # radian ranges compiled as degrees: ranges off by 180/pi
    xml = (f"<mujoco><worldbody>{frag.body_xml}</worldbody>"
           f"<actuator>{frag.actuator_xml}</actuator></mujoco>")
    model = mujoco.MjModel.from_xml_string(xml)
    with pytest.raises(SimError, match="ranges"):
        ArmIndex.from_model(model, kin)
    with pytest.raises(SimError, match="lacks"):
        ArmIndex.from_model(model, kin, "right")
    with pytest.raises(ConfigError):
        arm_mjcf(kin, angle_unit="gradian")


def test_six_servos_and_contacts(kin, model):
    names = [model.actuator(i).name for i in range(model.nu)]
    assert names == ["arm_shoulder_pan", "arm_shoulder_lift", "arm_elbow_flex",
                     "arm_wrist_flex", "arm_wrist_roll", "arm_gripper"]
    cup = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "arm_cup_geom")
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    for g in range(model.ngeom):
        if g in (cup, floor):
            continue
        assert model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0
    assert model.geom_contype[cup] == ArmMjcfConfig().cup_contype > 0
    idx = ArmIndex.from_model(model, kin)
    moving = [b for b in range(model.nbody) if model.body_jntnum[b] > 0]
    assert len(moving) == 6
    assert all(model.body_gravcomp[b] == 1 for b in [*moving, idx.cup_body_id])
    # The cup body is the one that carries the tool site: welds attach where suction acts.
    assert model.site_bodyid[idx.tool_site_id] == idx.cup_body_id


def test_arm_holds_pose_without_sagging(kin, model):
    data = mujoco.MjData(model)
    idx = ArmIndex.from_model(model, kin)
    q = np.array([0.2, 0.4, -0.2, 1.2, 0.3])  # arm stretched forward: largest gravity torque
    data.qpos[idx.qpos_adr[:5]] = q
    data.ctrl[idx.actuator_ids[:5]] = q
    for _ in range(round(1.0 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    assert np.abs(data.qpos[idx.qpos_adr[:5]] - q).max() < 1e-4


def test_arm_tracks_an_interpolated_pick_trajectory(kin, model):
    data = mujoco.MjData(model)
    idx = ArmIndex.from_model(model, kin)
    data.qpos[idx.qpos_adr[:5]] = kin.home
    data.ctrl[idx.actuator_ids[:5]] = kin.home
    mujoco.mj_forward(model, data)
    plan = plan_pick_place(kin, kin.home, (0.2, 0.08, 0.03), (0.14, -0.15, 0.0), 90,
                           MotionConfig())
    traj = interpolate(plan, kin.home, model.opt.timestep)
    errors = []
    for q in traj.q:
        data.ctrl[idx.actuator_ids[:5]] = q
        mujoco.mj_step(model, data)
        errors.append(np.linalg.norm(idx.tool_pose(data)[:3, 3] - kin.fk(q)[:3, 3]))
    for _ in range(round(0.3 / model.opt.timestep)):  # settle on the last setpoint
        mujoco.mj_step(model, data)
    settled = np.linalg.norm(idx.tool_pose(data)[:3, 3] - kin.fk(traj.q[-1])[:3, 3])
    assert max(errors) < 5e-3  # while moving at up to 2 rad/s
    assert settled < 5e-4
    assert not math.isnan(settled)
