"""Rollout GIFs: one annotated frame per decision plus the outcome, written atomically."""

import numpy as np
from PIL import Image

from llara_edge.sim import SimConfig, TabletopEnv
from llara_edge.sim.recorder import RolloutRecorder
from llara_edge.sim.rollout import expert_agent, run_episode


def test_gif_of_an_expert_episode(tmp_path):
    env = TabletopEnv(SimConfig(width=160, height=120))
    rec = RolloutRecorder()
    try:
        result = run_episode(env, expert_agent(), "scene_understanding", "L1", 0, rec.on_step)
        rec.add_final(env)
        raw_first = env.reset("scene_understanding", "L1", 0).rgb  # deterministic: same frame
    finally:
        env.close()
    assert result.success and len(rec.frames) == result.steps + 1
    drawn = (rec.frames[0] != raw_first).any(axis=2)
    assert 0 < drawn.mean() < 0.5, "boxes and points are drawn over the frame"
    path = rec.save(tmp_path / "run.gif")
    gif = Image.open(path)
    assert gif.n_frames == len(rec.frames) and gif.size == (160, 120)
    assert [p.name for p in tmp_path.iterdir()] == ["run.gif"]


def test_subsampling(tmp_path):
    rec = RolloutRecorder(max_frames=5)
    rec.frames = [np.full((12, 16, 3), i * 5, np.uint8) for i in range(50)]
    gif = Image.open(rec.save(tmp_path / "s.gif"))
    assert gif.n_frames == 5
