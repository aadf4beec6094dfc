"""MuJoCo model of the SO-101 suction arm, generated from the kinematics joint table.

Contract
- `arm_mjcf(kin, name_prefix)` returns MJCF fragments (a <worldbody> body tree and an
  <actuator> block) built from `kin.joints`, `kin.tool` and `kin.jaw`: body `pos`/`quat` are
  the joint origins, joint ranges the limits. So `kin.fk(q)` equals the pose of the site
  f"{prefix}_tool_tip" (base frame) to rounding; tests/test_sim_arm.py checks 1e-6 m.
- Names: joints and actuators f"{prefix}_{joint}" for the five arm joints and the jaw
  ("gripper"), in servo-id order 1..6; the cup body f"{prefix}_cup" (weld objects to it);
  the tool site f"{prefix}_tool_tip" (z axis out of the cup).
- Joint ranges are written in the unit the including model's <compiler angle> uses (pass
  `angle_unit`); everything else is unit-free (quats) or radians (ctrlrange). `ArmIndex`
  checks a compiled model against the kinematics and raises SimError on a mismatch.
- Contacts: arm links are visual only (contype = conaffinity = 0). Primitive capsules are
  fatter than the printed links, and a position-servoed link that brushed an object would
  shove it and fail a task for reasons no policy controls. Only the cup collides (bits set in
  ArmMjcfConfig): picks then touch objects physically and the spatula-style sweep pushes
  them. The world turns the cup's contacts off while it holds an object (geom_contype is
  mutable at run time) or relies on the weld to dominate.
- Dynamics: link masses/COMs/inertias from the published URDF (the suction head keeps the
  gripper link's values); every moving body has gravcomp="1", as the STS3215 servos hold
  the arm against gravity; servo parameters (armature 0.028, damping 0.6, frictionloss 0.052,
  kp 998.22, kv 2.731, torque limit 2.94 N m) are those of the published so101_new_calib.xml
  "sts3215" class, which makes the arm track min-jerk setpoints to well under 5 mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from llara_edge.errors import ConfigError, SimError
from llara_edge.geometry.kinematics import ArmKinematics, JointSpec, rpy_matrix

# Published URDF inertials (link frame): mass kg, COM m, (ixx iyy izz ixy ixz iyz) kg m^2.
SO101_INERTIALS: dict[str, tuple[float, tuple, tuple]] = {
    "shoulder": (0.100006, (-0.0307604, -1.66727e-05, -0.0252713),
                 (8.3759e-05, 8.10403e-05, 2.39783e-05, 7.55525e-08, -1.16342e-06, 1.54663e-07)),
    "upper_arm": (0.103, (-0.0898471, -0.00838224, 0.0184089),
                  (4.08002e-05, 0.000147318, 0.000142487, -1.97819e-05, -4.03016e-08,
                   8.97326e-09)),
    "lower_arm": (0.104, (-0.0980701, 0.00324376, 0.0182831),
                  (2.87438e-05, 0.000159844, 0.00014529, 7.41152e-06, 1.26409e-06,
                   -4.90188e-08)),
    "wrist": (0.079, (-0.000103312, -0.0386143, 0.0281156),
              (3.68263e-05, 2.5391e-05, 2.1e-05, 1.7893e-08, -5.28128e-08, 3.6412e-06)),
    "gripper": (0.087, (0.000213627, 0.000245138, -0.025187),
                (2.75087e-05, 4.33657e-05, 3.45059e-05, -3.35241e-07, -5.7352e-06,
                 -5.17847e-08)),
    "jaw": (0.012, (-0.00157495, -0.0300244, 0.0192755),
            (6.61427e-06, 1.89032e-06, 5.28738e-06, -3.19807e-07, -5.90717e-09, -1.09945e-07)),
}
PRINTED_RGBA = "1 0.82 0.12 1"
SERVO_RGBA = "0.1 0.1 0.1 1"
CUP_RGBA = "0.15 0.35 0.85 1"
COMPILER_XML = '<compiler angle="radian" autolimits="true"/>'


@dataclass(frozen=True)
class ArmMjcfConfig:
    """Servo model, visual sizes and the cup's contact bits."""

    kp: float = 998.22  # N m / rad, position gain
    kv: float = 2.731  # N m s / rad, velocity gain of the actuator
    torque_limit: float = 2.94  # N m
    damping: float = 0.60  # N m s / rad, joint
    armature: float = 0.028  # kg m^2, reflected rotor inertia
    frictionloss: float = 0.052  # N m
    link_radius: float = 0.016  # m, visual capsules
    cup_height: float = 0.012  # m, cup geom along the tool axis ending at the face
    stem_radius: float = 0.007  # m, suction stem from the wrist_roll flange to the cup
    cup_mass: float = 0.01  # kg
    cup_contype: int = 1
    cup_conaffinity: int = 1

    def __post_init__(self) -> None:
        positive = (self.kp, self.kv, self.torque_limit, self.armature, self.link_radius,
                    self.cup_height, self.stem_radius, self.cup_mass)
        if min(positive) <= 0 or self.damping < 0 or self.frictionloss < 0:
            raise ConfigError("arm MJCF gains, sizes and masses must be positive")
        if self.cup_contype < 0 or self.cup_conaffinity < 0:
            raise ConfigError("contact bits must be non-negative")


@dataclass(frozen=True)
class ArmMjcf:
    """MJCF fragments of one arm: paste body_xml into <worldbody>, actuator_xml into
    <actuator>, and make sure the model's compiler matches `angle_unit`."""

    body_xml: str
    actuator_xml: str
    joint_names: tuple[str, ...]  # 6 MJCF joint names, servo ids 1..6
    actuator_names: tuple[str, ...]
    tool_site: str
    cup_body: str
    cup_geom: str
    angle_unit: str


def _f(values) -> str:
    """Numbers written with round-trip precision (FK must match to 1e-12)."""
    return " ".join(f"{float(v):.17g}" for v in np.ravel(values))


def _quat(rpy: tuple[float, float, float]) -> str:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, rpy_matrix(rpy).ravel())
    return _f(q)


def _joint_xml(j: JointSpec, prefix: str, cfg: ArmMjcfConfig, angle_unit: str) -> str:
    lo, hi = (np.degrees([j.lower, j.upper]) if angle_unit == "degree" else (j.lower, j.upper))
    return (f'<joint name="{prefix}_{j.name}" type="hinge" axis="{_f(j.axis)}" limited="true" '
            f'range="{_f((lo, hi))}" damping="{cfg.damping}" armature="{cfg.armature}" '
            f'frictionloss="{cfg.frictionloss}"/>')


def _inertial_xml(link: str) -> str:
    mass, com, inertia = SO101_INERTIALS[link]
    return f'<inertial pos="{_f(com)}" mass="{mass}" fullinertia="{_f(inertia)}"/>'


def _visual(kind: str, rgba: str, **attrs: str) -> str:
    extra = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return (f'<geom type="{kind}" contype="0" conaffinity="0" group="1" density="0" '
            f'rgba="{rgba}" {extra}/>')


def _link_visual(to_xyz, cfg: ArmMjcfConfig) -> str:
    """Capsule from the body origin to the next joint origin (visual only)."""
    if float(np.linalg.norm(to_xyz)) < 1e-6:
        return ""
    return _visual("capsule", PRINTED_RGBA, fromto=_f((0, 0, 0, *to_xyz)),
                   size=f"{cfg.link_radius}")


def _base_xml(prefix: str) -> str:
    """Base visuals: the pan servo tower under the axis and the electronics plate behind."""
    return (_visual("cylinder", PRINTED_RGBA, pos="0 0 0.028", size="0.036 0.028")
            + _visual("box", SERVO_RGBA, pos="-0.048 0 0.03", size="0.028 0.034 0.03",
                      name=f"{prefix}_base_plate"))


def _tool_xml(kin: ArmKinematics, prefix: str, cfg: ArmMjcfConfig, angle_unit: str) -> str:
    """Stem + cup body (tool frame at the cup face, z out of the cup) + the jaw (6th motor)."""
    t = kin.tool
    stem = _visual("cylinder", SERVO_RGBA, fromto=_f((0, 0, 0, *t.xyz)),
                   size=f"{cfg.stem_radius}")
    cup = (f'<body name="{prefix}_cup" pos="{_f(t.xyz)}" quat="{_quat(t.rpy)}" gravcomp="1">'
           f'<geom name="{prefix}_cup_geom" type="cylinder" size="{t.cup_radius} '
           f'{cfg.cup_height / 2}" pos="0 0 {-cfg.cup_height / 2}" mass="{cfg.cup_mass}" '
           f'contype="{cfg.cup_contype}" conaffinity="{cfg.cup_conaffinity}" '
           f'condim="3" rgba="{CUP_RGBA}"/>'
           f'<site name="{prefix}_tool_tip" pos="0 0 0" size="0.004" rgba="1 0 0 1"/></body>')
    j = kin.jaw
    jaw = (f'<body name="{prefix}_jaw" pos="{_f(j.xyz)}" quat="{_quat(j.rpy)}" gravcomp="1">'
           f'{_joint_xml(j, prefix, cfg, angle_unit)}{_inertial_xml("jaw")}'
           + _visual("box", PRINTED_RGBA, pos="0 -0.02 0.019", size="0.004 0.02 0.008")
           + "</body>")
    return stem + cup + jaw


def arm_mjcf(kin: ArmKinematics, name_prefix: str = "arm", cfg: ArmMjcfConfig | None = None,
             base_pos=(0.0, 0.0, 0.0), base_yaw: float = 0.0,
             angle_unit: str = "radian") -> ArmMjcf:
    """MJCF of the arm, base placed at `base_pos` (m) turned by `base_yaw` (rad) in its parent."""
    cfg = cfg or ArmMjcfConfig()
    if angle_unit not in ("radian", "degree"):
        raise ConfigError(f"angle_unit must be 'radian' or 'degree', got {angle_unit!r}")
    if kin.jaw.name in kin.joint_names:
        raise ConfigError("the jaw joint name must differ from the arm joint names")
    p = name_prefix
    chain = list(kin.joints)
    # Each joint's child body; inside it, a capsule to the next joint origin (or the tool).
    opened = []
    for i, j in enumerate(chain):
        to_xyz = chain[i + 1].xyz if i + 1 < len(chain) else (0.0, 0.0, 0.0)
        opened.append(f'<body name="{p}_{j.child}" pos="{_f(j.xyz)}" quat="{_quat(j.rpy)}" '
                      f'gravcomp="1">{_joint_xml(j, p, cfg, angle_unit)}'
                      f'{_inertial_xml(j.child)}{_link_visual(to_xyz, cfg)}')
    first = _link_visual(chain[0].xyz, cfg)
    body = (f'<body name="{p}_base" pos="{_f(base_pos)}" '
            f'quat="{_quat((0.0, 0.0, base_yaw))}">{_base_xml(p)}{first}'
            + "".join(opened) + _tool_xml(kin, p, cfg, angle_unit) + "</body>" * (len(opened) + 1))
    names = tuple(f"{p}_{j.name}" for j in (*chain, kin.jaw))
    lower = [*kin.lower, kin.jaw.lower]
    upper = [*kin.upper, kin.jaw.upper]
    actuators = "".join(
        f'<position name="{n}" joint="{n}" kp="{cfg.kp}" kv="{cfg.kv}" ctrllimited="true" '
        f'ctrlrange="{_f((lo, hi))}" forcelimited="true" '
        f'forcerange="{-cfg.torque_limit} {cfg.torque_limit}"/>'
        for n, lo, hi in zip(names, lower, upper, strict=True))
    return ArmMjcf(body, actuators, names, names, f"{p}_tool_tip", f"{p}_cup",
                   f"{p}_cup_geom", angle_unit)


def arm_only_xml(kin: ArmKinematics | None = None, cfg: ArmMjcfConfig | None = None,
                 timestep: float = 0.004, name_prefix: str = "arm") -> str:
    """A complete model: the arm on a floor plane (z = 0 is the table surface)."""
    kin = kin or ArmKinematics.so101()
    frag = arm_mjcf(kin, name_prefix, cfg)
    return (f'<mujoco model="{name_prefix}_only">{COMPILER_XML}'
            f'<option timestep="{timestep}" integrator="implicitfast"/>'
            '<worldbody><light pos="0 0 1.5" dir="0 0 -1" directional="true"/>'
            '<geom name="floor" type="plane" size="1 1 0.05" rgba="0.8 0.8 0.8 1"/>'
            f"{frag.body_xml}</worldbody><actuator>{frag.actuator_xml}</actuator></mujoco>")


def arm_only_model(kin: ArmKinematics | None = None, cfg: ArmMjcfConfig | None = None,
                   timestep: float = 0.004) -> mujoco.MjModel:
    """Compiled arm-on-a-floor model (prefix "arm") for tests and demos."""
    try:
        return mujoco.MjModel.from_xml_string(arm_only_xml(kin, cfg, timestep))
    except ValueError as exc:
        raise SimError(f"arm model does not compile: {exc}") from exc


@dataclass(frozen=True)
class ArmIndex:
    """Addresses of one arm in a compiled model (6 motors in servo-id order)."""

    qpos_adr: np.ndarray  # (6,) int
    dof_adr: np.ndarray  # (6,) int
    actuator_ids: np.ndarray  # (6,) int
    tool_site_id: int
    cup_body_id: int
    base_body_id: int

    @classmethod
    def from_model(cls, model: mujoco.MjModel, kin: ArmKinematics,
                   name_prefix: str = "arm") -> ArmIndex:
        """Look the arm up by name; SimError if missing or its ranges differ from `kin`."""
        p, obj = name_prefix, mujoco.mjtObj
        names = [f"{p}_{j.name}" for j in (*kin.joints, kin.jaw)]
        ids = {
            "joint": [mujoco.mj_name2id(model, obj.mjOBJ_JOINT, n) for n in names],
            "actuator": [mujoco.mj_name2id(model, obj.mjOBJ_ACTUATOR, n) for n in names],
            "site": [mujoco.mj_name2id(model, obj.mjOBJ_SITE, f"{p}_tool_tip")],
            "body": [mujoco.mj_name2id(model, obj.mjOBJ_BODY, f"{p}_{s}") for s in ("cup", "base")],
        }
        missing = [k for k, v in ids.items() if min(v) < 0]
        if missing:
            raise SimError(f"model lacks the {'/'.join(missing)} of arm {p!r}")
        jid = np.array(ids["joint"])
        want = np.array([[j.lower, j.upper] for j in (*kin.joints, kin.jaw)])
        if not np.allclose(model.jnt_range[jid], want, atol=1e-9):
            raise SimError(f"arm {p!r} joint ranges differ from the kinematics: was the model "
                           f"compiled with a different <compiler angle>?")
        return cls(model.jnt_qposadr[jid].copy(), model.jnt_dofadr[jid].copy(),
                   np.array(ids["actuator"]), ids["site"][0], ids["body"][0], ids["body"][1])

    def tool_pose(self, data: mujoco.MjData) -> np.ndarray:
        """4x4 world pose of the tool tip site (after mj_forward / mj_step)."""
        t = np.eye(4)
        t[:3, :3] = data.site_xmat[self.tool_site_id].reshape(3, 3)
        t[:3, 3] = data.site_xpos[self.tool_site_id]
        return t
