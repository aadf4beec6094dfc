"""TabletopEnv: observations, determinism, depth vs state, oracle boxes, primitives, errors."""

import numpy as np
import pytest

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ConfigError, DepthError, GeometryError, SimError
from llara_edge.sim import ScriptedExpert, SimConfig, TabletopEnv, pixel_to_base, render_annotated
from llara_edge.sim.camera import project_points


@pytest.fixture(scope="module")
def env():
    e = TabletopEnv(SimConfig(width=160, height=120))
    yield e
    e.close()


def test_observation_fields(env):
    obs = env.reset("visual_manipulation", "L1", 0)
    assert obs.rgb.shape == (120, 160, 3) and obs.rgb.dtype == np.uint8
    assert obs.depth.shape == (120, 160) and obs.depth.dtype == np.uint16
    assert obs.depth_scale == 0.001 and obs.intrinsics.fx == pytest.approx(153.75)
    assert obs.T_base_cam.shape == (4, 4) and obs.joints.shape == (6,)
    assert np.allclose(obs.joints[:5], env.kin.home, atol=0.02)  # parked at home
    assert obs.depth[0, :20].max() == 0  # the top-left corner looks past the table: no depth
    assert obs.depth[-1].min() > 0  # the bottom row sees the table


def test_same_seed_same_bytes_different_seed_different(env):
    a = env.reset("scene_understanding", "L2", 3)
    oa = env.oracle_objects()
    b = env.reset("scene_understanding", "L2", 3)
    assert a.rgb.tobytes() == b.rgb.tobytes() and a.depth.tobytes() == b.depth.tobytes()
    assert oa == env.oracle_objects()
    c = env.reset("scene_understanding", "L2", 4)
    assert a.rgb.tobytes() != c.rgb.tobytes() and a.depth.tobytes() != c.depth.tobytes()


def test_physics_is_deterministic(env):
    frames = []
    for _ in range(2):
        env.reset("rotate", "L1", 5)
        env.execute(ScriptedExpert(env).act())
        obs = env.observe()
        frames.append((obs.rgb.tobytes(), obs.depth.tobytes(), obs.joints.tobytes()))
    assert frames[0] == frames[1]


def test_depth_deprojects_to_sim_state(env):
    for seed in range(3):
        obs = env.reset("scene_understanding", "L2", seed)
        for o in env.oracle_objects():
            p = pixel_to_base(obs.depth, obs.depth_scale, obs.intrinsics, obs.T_base_cam,
                              o.top_center_px, 5)
            assert np.abs(p - np.array(o.position)).max() < 0.003, o.name


def test_bbox_contains_projected_centre(env):
    for seed in range(3):
        env.reset("visual_manipulation", "L2", seed)
        w = env.world
        for o in env.oracle_objects():
            cx, cy, bw, bh = o.bbox
            assert 0 < bw < 1 and 0 < bh < 1
            x0, x1, y0, y1 = cx - bw / 2, cx + bw / 2, cy - bh / 2, cy + bh / 2
            assert min(x0, y0) >= -1e-9 and max(x1, y1) <= 1 + 1e-9  # clipped to the image
            u, v = project_points(env.intrinsics, env.T_base_cam,
                                  w.data.xpos[w.index.body[o.name]][None])[0]
            assert x0 <= u / 160 <= x1 and y0 <= v / 120 <= y1
            tx, ty = o.top_center
            assert x0 <= tx <= x1 and y0 <= ty <= y1


def test_depth_error_for_sky_before_the_arm_moves(env):
    env.reset("visual_manipulation", "L1", 1)
    q0 = env.world.q
    with pytest.raises(DepthError):
        env.execute(PickPlaceAction((0.03, 0.01), (0.5, 0.6)))
    assert np.array_equal(env.world.q, q0) and env.steps == 1


def test_depth_error_for_an_injected_hole(env):
    obs = env.reset("visual_manipulation", "L1", 2)
    target = next(o for o in env.oracle_objects() if o.name == env.task.targets[0])
    u, v = (int(c) for c in target.top_center_px)
    depth = obs.depth.copy()
    depth[v - 3:v + 4, u - 3:u + 4] = 0
    with pytest.raises(DepthError):
        pixel_to_base(depth, obs.depth_scale, obs.intrinsics, obs.T_base_cam,
                      target.top_center_px, 5)


def test_geometry_error_out_of_reach_before_the_arm_moves(env):
    env.reset("visual_manipulation", "L1", 1)
    q0 = env.world.q
    with pytest.raises(GeometryError):  # bottom corner: table ~0.45 m away, beyond reach
        env.execute(PickPlaceAction((0.02, 0.98), (0.5, 0.6)))
    assert np.array_equal(env.world.q, q0)


def test_workspace_is_in_view(env):
    ws = env.workspace
    th = np.linspace(-ws.max_bearing, ws.max_bearing, 9)
    pts = np.array([(r * np.cos(t), r * np.sin(t), z) for r in (ws.r_min, ws.r_max)
                    for t in th for z in (0.0, 0.03)])
    px = project_points(env.intrinsics, env.T_base_cam, pts)
    assert np.all(px >= 0) and np.all(px[:, 0] <= 160) and np.all(px[:, 1] <= 120)


def test_missing_gl_backend_is_a_sim_error(monkeypatch):
    import mujoco

    def broken(*args, **kwargs):
        raise ImportError("libEGL.so.1: cannot open shared object file")

    monkeypatch.setattr(mujoco, "Renderer", broken)
    with pytest.raises(SimError, match="OpenGL backend"):
        TabletopEnv(SimConfig(width=160, height=120)).reset("reach", "L1", 0)


def test_pick_on_empty_table_picks_nothing(env):
    env.reset("visual_manipulation", "L1", 3)
    box = env.world.index.items[env.task.container]
    px = project_points(env.intrinsics, env.T_base_cam, np.array([[box.x, box.y, 0.0]]))[0]
    point = (round(px[0] / 160, 3), round(px[1] / 120, 3))
    out = env.execute(PickPlaceAction(point, point))
    assert out.info["picked"] == [] and not out.success


def test_joint_steps_track_targets(env):
    env.reset("reach", "L1", 0)
    target = np.array(env.kin.home) + np.array([0.3, 0.2, -0.2, -0.1, 0.5])
    for _ in range(8):
        out = env.execute(JointStepAction(tuple(target), 1.0))
    assert np.abs(env.world.q[:5] - target).max() < 0.01
    assert out.info["step"] == 8 and not out.info["clipped"]
    out = env.execute(JointStepAction((10.0, 0, 0, 0, 0), 1.0))
    assert out.info["clipped"]
    with pytest.raises(ConfigError):
        env.execute(JointStepAction((0.0, 0.0), 1.0))


def test_sweep_pushes_the_object(env):
    env.reset("visual_manipulation", "L1", 4)
    name = env.task.targets[0]
    start = env.world.poses()[name].position.copy()
    info = next(o for o in env.oracle_objects() if o.name == name)
    goal = start + np.array([0.05, 0.0, 0.0]) * np.sign(0.18 - start[0])
    px = project_points(env.intrinsics, env.T_base_cam, goal[None])[0]
    env.execute(PickPlaceAction(info.top_center, (px[0] / 160, px[1] / 120), 0, "spatula"))
    moved = env.world.poses()[name].position - start
    assert np.dot(moved[:2], (goal - start)[:2]) / 0.05 > 0.025  # pushed 2.5+ cm of 5


def test_render_annotated_draws_without_touching_obs(env):
    obs = env.reset("rotate", "L2", 0)
    before = obs.rgb.copy()
    action = ScriptedExpert(env).act()
    img = render_annotated(obs, env.oracle_objects(), action)
    assert img.shape == obs.rgb.shape and img.dtype == np.uint8
    assert np.array_equal(obs.rgb, before) and not np.array_equal(img, before)


def test_usage_errors():
    fresh = TabletopEnv(SimConfig(width=160, height=120))
    with pytest.raises(SimError):
        fresh.oracle_objects()
    with pytest.raises(SimError):
        fresh.reset("fly", "L1", 0)


def test_snap_to_table_puts_noisy_table_points_on_the_surface():
    import numpy as np

    from llara_edge.errors import DepthError
    from llara_edge.geometry.table import snap_to_table

    np.testing.assert_array_equal(snap_to_table(np.array([0.2, 0.0, -0.0004])), [0.2, 0.0, 0.0])
    above = np.array([0.2, 0.1, 0.03])
    assert snap_to_table(above) is above
    with pytest.raises(DepthError, match="below the table"):
        snap_to_table(np.array([0.2, 0.0, -0.05]))


def test_policy_place_on_bare_table_is_executed():
    """A place point on the table next to a zone (z measured a hair below 0) still runs."""
    import numpy as np

    from llara_edge.actions import PickPlaceAction
    from llara_edge.sim import ScriptedExpert, SimConfig, TabletopEnv
    from llara_edge.sim.camera import project_points
    from llara_edge.sim.perception import pixel_to_base

    env = TabletopEnv(SimConfig(width=160, height=120))
    try:
        env.reset("visual_manipulation", "L1", 0)
        obs, expert = env.observe(), ScriptedExpert(env).act()
        # bare table at (0.2, 0, 0) m for seed 0; its measured depth puts it 0.2 mm below z = 0
        px = project_points(env.intrinsics, env.T_base_cam, np.array([[0.2, 0.0, 0.0]]))[0]
        raw = pixel_to_base(obs.depth, obs.depth_scale, obs.intrinsics, obs.T_base_cam, tuple(px))
        assert -0.01 < raw[2] < 0.0
        spot = (float(px[0]) / 160, float(px[1]) / 120)
        outcome = env.execute(PickPlaceAction(expert.pick, spot))
        assert outcome.info["place_xyz"][2] == 0.0 and outcome.info["picked"]
    finally:
        env.close()


def test_triton_imported_after_an_egl_render_does_not_crash():
    """Regression (renderer._load_triton_before_egl): rendering through EGL and only then
    importing transformers' modelling code (triton, another LLVM) used to segfault."""
    import os
    import subprocess
    import sys

    pytest.importorskip("triton", reason="without triton there is no second LLVM to clash")
    code = ("from llara_edge.sim import SimConfig, TabletopEnv\n"
            "env = TabletopEnv(SimConfig(width=160, height=120))\n"
            "env.reset('visual_manipulation', 'L1', 0); env.observe()\n"
            "import torch._dynamo, llara_edge.models.llava\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr)
