"""Assembly of the tabletop MJCF: table, lights, front camera, the SO-101 arm, scene items,
and one (inactive) weld per object that the suction cup switches on.

The table top is the plane z = 0 of the base frame; it ends behind the robot so that the top
rows of the camera image see nothing (no depth, as a RealSense looking past a table). The
returned `SceneIndex` holds every id the simulator needs, looked up by name once.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from llara_edge.errors import SimError
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.sim.arm import COMPILER_XML, ArmIndex, ArmMjcf, arm_mjcf
from llara_edge.sim.camera import fovy_deg, mujoco_xyaxes
from llara_edge.sim.config import SimConfig
from llara_edge.sim.objects import SceneItem, container_body, object_assets, object_body

CAMERA = "front"
ARM_PREFIX = "arm"
TABLE_SIZE = (0.38, 0.5, 0.02)  # half sizes, m
TABLE_CENTRE_X = 0.18  # m: the table spans x in [-0.2, 0.56]
TABLE_RGBA = "0.62 0.55 0.47 1"


@dataclass
class SceneIndex:
    """Ids of a compiled scene, by item name."""

    items: dict[str, SceneItem]
    body: dict[str, int]  # item name -> body id
    weld: dict[str, int]  # object name -> equality id
    qvel_adr: dict[str, int]  # object name -> first dof of its free joint
    arm: ArmIndex
    cup_geom: int


def _visual_xml(cfg: SimConfig) -> str:
    # extent is pinned to 1 so znear / zfar below are metres; shadows off (cheap on mesa).
    return (f'<statistic extent="1" center="{TABLE_CENTRE_X} 0 0.1"/>'
            f'<visual><global offwidth="{cfg.width}" offheight="{cfg.height}"/>'
            '<map znear="0.02" zfar="4"/><quality shadowsize="0"/>'
            '<headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0 0 0"/>'
            '</visual>')


def _world_xml(cfg: SimConfig) -> str:
    sx, sy, sz = TABLE_SIZE
    xy = ' '.join(f'{v:.9g}' for v in mujoco_xyaxes(cfg.camera_position, cfg.camera_target))
    pos = ' '.join(f'{v:.9g}' for v in cfg.camera_position)
    return ('<light directional="true" pos="0.2 0.3 1.5" dir="-0.1 -0.2 -1" castshadow="false" '
            'diffuse="0.5 0.5 0.5" specular="0.1 0.1 0.1"/>'
            f'<geom name="table" type="box" size="{sx} {sy} {sz}" '
            f'pos="{TABLE_CENTRE_X} 0 {-sz}" rgba="{TABLE_RGBA}" group="0"/>'
            f'<camera name="{CAMERA}" pos="{pos}" xyaxes="{xy}" '
            f'fovy="{fovy_deg(cfg.intrinsics):.9g}"/>')


def scene_xml(cfg: SimConfig, arm: ArmMjcf, items: tuple[SceneItem, ...]) -> str:
    """Complete MJCF of a scene (items keep their order: obj_i / box_i by kind)."""
    objects = [it for it in items if not it.is_container]
    boxes = [it for it in items if it.is_container]
    assets = object_assets({it.kind for it in objects})
    bodies = [object_body(i, it) for i, it in enumerate(objects)]
    bodies += [container_body(i, it) for i, it in enumerate(boxes)]
    welds = "".join(f'<weld name="suction_{i}" body1="{arm.cup_body}" body2="obj_{i}" '
                    'active="false" solref="0.01 1"/>' for i in range(len(objects)))
    return (f'<mujoco model="llara_tabletop">{COMPILER_XML}'
            f'<option timestep="{cfg.timestep}" integrator="implicitfast" cone="elliptic"/>'
            f'{_visual_xml(cfg)}<asset>{"".join(assets)}</asset>'
            f'<worldbody>{_world_xml(cfg)}{arm.body_xml}{"".join(bodies)}</worldbody>'
            f'<equality>{welds}</equality><actuator>{arm.actuator_xml}</actuator></mujoco>')


def build_scene(cfg: SimConfig, kin: ArmKinematics, items: tuple[SceneItem, ...]
                ) -> tuple[mujoco.MjModel, SceneIndex]:
    """Compile the scene and index it; SimError if MuJoCo rejects it."""
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        raise SimError(f"scene item names must be unique, got {names}")
    arm = arm_mjcf(kin, ARM_PREFIX)
    try:
        model = mujoco.MjModel.from_xml_string(scene_xml(cfg, arm, items))
    except ValueError as err:
        raise SimError(f"scene does not compile: {err}") from err
    body, weld, qvel = {}, {}, {}
    objects = [it for it in items if not it.is_container]
    boxes = [it for it in items if it.is_container]
    for i, it in enumerate(objects):
        body[it.name] = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"obj_{i}")
        weld[it.name] = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_EQUALITY, f"suction_{i}")
        jnt = model.body_jntadr[body[it.name]]
        qvel[it.name] = int(model.jnt_dofadr[jnt])
    for i, it in enumerate(boxes):
        body[it.name] = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"box_{i}")
    cup_geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, arm.cup_geom)
    camera = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, CAMERA)
    if min(cup_geom, camera, *body.values(), *weld.values(), 0) < 0:
        raise SimError("compiled scene lacks a named body, weld, cup geom or camera")
    return model, SceneIndex({it.name: it for it in items}, body, weld, qvel,
                             ArmIndex.from_model(model, kin, ARM_PREFIX), cup_geom)


def set_arm(model: mujoco.MjModel, data: mujoco.MjData, index: SceneIndex, q6: np.ndarray
            ) -> None:
    """Put the arm (5 joints + jaw) at q6 with matching position targets, at rest."""
    data.qpos[index.arm.qpos_adr] = q6
    data.qvel[index.arm.dof_adr] = 0.0
    data.ctrl[index.arm.actuator_ids] = q6
    mujoco.mj_forward(model, data)
