"""Cameras: config and registry, the background reader, depth holes, the RealSense path through
a real pyrealsense2 pipeline fed by a software device (synthetic and simulator frames),
recording and playback, the file source. A physical RealSense is only used by `hardware` tests.
"""

import threading
import time

import numpy as np
import pytest
from PIL import Image

from llara_drivers.camera_base import (
    Camera,
    CameraConfig,
    EndOfStream,
    Frame,
    camera_class,
    depth_at,
    make_camera,
    register_camera,
)
from llara_drivers.camera_model import Intrinsics, deproject_pixel_to_point
from llara_drivers.errors import DepthError, DeviceError, DriverConfigError
from llara_drivers.file_camera.io import save_npz
from llara_edge.errors import ConfigError

try:
    import pyrealsense2 as rs
except ImportError:
    rs = None
needs_rs = pytest.mark.skipif(rs is None, reason="pyrealsense2 not importable (wheel or "
                                                  "libusb-1.0 missing)")

SIZE = (160, 120)
INTR = Intrinsics(80, 60, 70.0, 70.0, 40.0, 30.0)


def _frame(n: int, depth: np.ndarray | None = None, intr: Intrinsics = INTR) -> Frame:
    color = np.full((intr.height, intr.width, 3), n % 256, np.uint8)
    return Frame(color, depth, intr, n * 0.01, n)


# ----------------------------------------------------------------------------- config, registry
def test_config_rejects_bad_values():
    for bad in ({"kind": ""}, {"width": 0}, {"fps": 0}, {"hole_radius": -1},
                {"timeout_s": 0}, {"depth_scale": 0}, {"depth_width": -1}):
        with pytest.raises(DriverConfigError):
            CameraConfig(**bad)
    assert CameraConfig(width=320, height=240).depth_size == (320, 240)
    assert CameraConfig(depth_width=848, depth_height=480).depth_size == (848, 480)


def test_registry_resolves_builtin_kinds_and_rejects_unknown():
    names = {k: camera_class(k).__name__ for k in ("sim", "file", "realsense",
                                                   "software-realsense")}
    assert names == {"sim": "SimCamera", "file": "FileCamera", "realsense": "RealSenseCamera",
                     "software-realsense": "SoftwareRealSenseCamera"}
    with pytest.raises(DriverConfigError, match="unknown camera kind"):
        make_camera(CameraConfig(kind="webcam"))
    with pytest.raises(DriverConfigError, match="serves kind"):
        camera_class("file")(CameraConfig(kind="sim"))


@register_camera("test-counter")
class CounterCamera(Camera):
    """Synthetic source: frame n has colour value n; ends after `limit`, or stalls."""

    def __init__(self, config, limit=1000, stall=False):
        super().__init__(config)
        self.limit, self.stall, self.n = limit, stall, 0

    def _open(self):
        self.n = 0

    def _grab(self, timeout_s):
        time.sleep(0.002)
        if self.stall:
            time.sleep(timeout_s)
            raise DeviceError("no frames (stalled)")
        if self.n >= self.limit:
            raise EndOfStream("done")
        self.n += 1
        return _frame(self.n)

    def _release(self):
        self.n = -1


def test_background_reader_returns_newest_frames_once():
    cfg = CameraConfig(kind="test-counter", timeout_s=1.0)
    with make_camera(cfg, limit=10_000) as cam:
        assert cam.read().frame_number == 1  # no reader yet: read grabs directly
        seen = [cam.async_read().frame_number for _ in range(5)]
        assert seen == sorted(set(seen))  # strictly newer every time
        time.sleep(0.05)  # the reader runs ahead: async_read skips to the newest
        newest = cam.async_read().frame_number
        assert newest > seen[-1] + 1
        assert cam.read().frame_number > newest  # with a reader, read waits for a fresh one
        assert any(t.name == "camera-test-counter" for t in threading.enumerate())
    assert cam.n == -1 and not cam.is_connected
    with pytest.raises(DeviceError, match="not connected"):
        cam.read()


def test_reader_end_of_stream_and_stall_are_reported():
    with make_camera(CameraConfig(kind="test-counter", timeout_s=0.5), limit=3) as cam:
        numbers = []
        with pytest.raises(EndOfStream):
            for _ in range(10):
                numbers.append(cam.async_read().frame_number)
        assert numbers and numbers[-1] == 3
    stalled = make_camera(CameraConfig(kind="test-counter", timeout_s=0.1), stall=True)
    with stalled, pytest.raises(DeviceError, match=r"no new frame.*stalled"):
        stalled.async_read(timeout_s=0.5)


# ----------------------------------------------------------------------------- depth holes
def test_depth_hole_takes_the_neighbourhood_median():
    depth = np.full((60, 80), 0.5, np.float32)
    depth[20, 30] = np.nan  # a hole
    depth[21, 31] = 0.9  # an outlier next to it
    f = _frame(0, depth)
    assert depth_at(f, 30.5, 20.5, radius=1) == pytest.approx(0.5)
    assert depth_at(f, 31.2, 21.7, radius=0) == pytest.approx(0.9)
    depth[15:26, 25:36] = np.nan  # a hole larger than the window
    with pytest.raises(DepthError, match=r"pixel \(30.5, 20.5\)"):
        depth_at(_frame(0, depth), 30.5, 20.5, radius=2)
    assert depth_at(_frame(0, depth), 30.5, 20.5, radius=6) == pytest.approx(0.5)
    depth[:] = 0.0  # zeros are holes too, never a depth
    with pytest.raises(DepthError):
        depth_at(_frame(0, depth), 5, 5, radius=3)
    with pytest.raises(DepthError, match="outside"):
        depth_at(_frame(0, depth), 80.0, 3.0)
    with pytest.raises(DepthError, match="no depth stream"):
        depth_at(_frame(0), 5, 5)


def test_frame_checks_shapes_and_converts_to_units():
    with pytest.raises(ValueError):
        Frame(np.zeros((60, 80, 3), np.float32), None, INTR, 0.0, 0)
    with pytest.raises(ValueError):
        Frame(np.zeros((60, 80, 3), np.uint8), np.zeros((60, 80), np.float64), INTR, 0.0, 0)
    depth = np.full((60, 80), np.nan, np.float32)
    depth[1, 2] = 0.7344
    units = Frame(np.zeros((60, 80, 3), np.uint8), depth, INTR, 0.0, 0, 0.001).depth_units()
    assert units.dtype == np.uint16 and units[1, 2] == 734 and units.sum() == 734


# ----------------------------------------------------------------------------- RealSense path
def _software_camera(color: Intrinsics, depth: Intrinsics | None = None, extr=None,
                     **cfg):
    from llara_drivers.realsense.camera import RealSenseCamera
    from llara_drivers.realsense.software import SoftwareRealSense

    dev = SoftwareRealSense(color, depth, extr, depth_scale=0.001, fps=30)
    di = depth or color
    config = CameraConfig(kind="realsense", width=color.width, height=color.height,
                          depth_width=di.width, depth_height=di.height, serial=dev.serial,
                          **cfg)
    return dev, RealSenseCamera(config, context=dev.context)


@needs_rs
def test_intrinsics_round_trip_through_librealsense():
    from llara_drivers.realsense.rs_api import from_rs_intrinsics, to_rs_intrinsics

    exact = Intrinsics(640, 480, 615.0, 615.5, 320.25, 240.0, "brown_conrady",
                       (0.125, -0.25, 0.0, 0.0, 0.5))
    assert from_rs_intrinsics(to_rs_intrinsics(exact)) == exact
    odd = Intrinsics(848, 480, 421.17, 421.17, 425.3, 239.91, "inverse_brown_conrady")
    back = from_rs_intrinsics(to_rs_intrinsics(odd))
    assert back.model == odd.model
    assert np.allclose(back.matrix(), odd.matrix(), rtol=1e-7)  # float32 inside librealsense
    ri = to_rs_intrinsics(odd)
    ri.model, ri.coeffs = rs.distortion.kannala_brandt4, [0.1, 0, 0, 0, 0]
    with pytest.raises(DeviceError, match="distortion"):
        from_rs_intrinsics(ri)
    ri.coeffs = [0.0] * 5
    assert from_rs_intrinsics(ri).model == "none"


@needs_rs
def test_unknown_serial_lists_connected_devices():
    from llara_drivers.realsense.rs_api import connected_serials
    from llara_drivers.realsense.software import SoftwareRealSense

    dev = SoftwareRealSense(INTR, serial="SW-TEST-7")
    cfg = CameraConfig(kind="realsense", serial="123456789012", width=80, height=60)
    with pytest.raises(DeviceError, match="'123456789012' not found; connected: SW-TEST-7"):
        make_camera(cfg, context=dev.context).connect()
    ctx = rs.context()  # the machine's devices: none here, listed when there are some
    listed = ", ".join(connected_serials(ctx)) or "none"
    with pytest.raises(DeviceError, match=f"not found; connected: {listed}"):
        make_camera(cfg, context=ctx).connect()


@needs_rs
def test_software_frames_come_out_of_the_pipeline_unchanged():
    dev, cam = _software_camera(INTR, align_depth=False)
    rng = np.random.default_rng(1)
    with cam:
        for n in range(3):
            color = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
            units = rng.integers(200, 3000, (60, 80)).astype(np.uint16)
            units[10:14, 20:25] = 0  # holes
            dev.push(color, units, 1000.0 + 33.0 * n, n)
            f = cam.read()
            assert f.frame_number == n and f.timestamp_s == pytest.approx(1.0 + 0.033 * n)
            assert np.array_equal(f.color, color)
            assert np.array_equal(np.isnan(f.depth), units == 0)
            assert np.allclose(f.depth[units > 0], units[units > 0] * 0.001, rtol=0, atol=1e-6)
            assert f.intrinsics == INTR and f.depth_intrinsics == INTR
        assert cam.depth_scale == pytest.approx(0.001, rel=1e-6)
        assert cam.serial == dev.serial


@needs_rs
def test_align_uses_the_depth_to_colour_extrinsics():
    depth_intr = Intrinsics(64, 48, 50.0, 50.0, 32.0, 24.0)
    extr = np.eye(4)
    extr[0, 3] = 0.05  # colour camera 5 cm to the left of the depth camera: p_c = p_d + t
    dev, cam = _software_camera(INTR, depth_intr, extr)
    units = np.full((48, 64), 1000, np.uint16)  # right half: wall at 1.0 m
    units[:, :32] = 600  # left half (rays with x < 0): a nearer wall at 0.6 m
    with cam:
        dev.push(np.zeros((60, 80, 3), np.uint8), units, 0.0, 0)
        f = cam.read()
    assert f.depth.shape == (60, 80) and f.depth_intrinsics is None
    # Colour ray u hits the near wall while (u - 40) / 70 * 0.6 < 0.05 (u < 45.8) and the far
    # one from (u - 40) / 70 >= 0.05 (u >= 43.5); the nearer surface wins where both do.
    for row in f.depth[5:-5]:
        far = np.flatnonzero(np.isclose(row, 1.0, atol=1e-6))
        near = np.flatnonzero(np.isclose(row, 0.6, atol=1e-6))
        assert 45 <= far.min() <= 47 and near.max() <= 46 and near.max() < far.min()
    assert np.isfinite(f.depth).mean() > 0.9


@needs_rs
def test_recording_round_trip_through_playback(tmp_path):
    bag = tmp_path / "synthetic.db3"
    dev, cam = _software_camera(INTR, align_depth=False, record_path=str(bag))
    rng = np.random.default_rng(2)
    sent = {}
    with cam:
        for n in range(4):
            color = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
            units = rng.integers(1, 4000, (60, 80)).astype(np.uint16)
            dev.push(color, units, 100.0 * n, n)
            sent[n] = (color, units)
            assert cam.read().frame_number == n
    play = make_camera(CameraConfig(kind="realsense", path=str(bag), align_depth=False,
                                    timeout_s=1.0))
    got = []
    with play:
        assert play.serial == dev.serial and play.depth_scale == pytest.approx(0.001)
        with pytest.raises(EndOfStream):
            for _ in range(20):
                got.append(play.read())
    assert {f.frame_number for f in got} == set(sent)
    for f in got:  # colour from frame n; depth from the same or the next frame
        color, _ = sent[f.frame_number]
        assert np.array_equal(f.color, color) and f.intrinsics == INTR
        assert any(np.allclose(f.depth, u * 0.001, atol=1e-6) for _, u in sent.values())


@needs_rs
def test_bad_recording_path_is_a_device_error(tmp_path):
    cfg = CameraConfig(kind="realsense", path=str(tmp_path / "missing.db3"))
    with pytest.raises(DriverConfigError, match="does not exist"):
        make_camera(cfg)
    _, cam = _software_camera(INTR, record_path=str(tmp_path / "out.avi"))
    with pytest.raises(DeviceError, match="cannot start"):
        cam.connect()


# ----------------------------------------------------------------------------- simulator frames
@pytest.fixture(scope="module")
def env():
    from llara_edge.sim import SimConfig, TabletopEnv

    e = TabletopEnv(SimConfig(width=SIZE[0], height=SIZE[1]))
    e.reset("visual_manipulation", "L1", 0)
    yield e
    e.close()


def _raw_mujoco_depth(env) -> np.ndarray:
    """Float z-depth (m) rendered straight from MuJoCo, before any quantisation."""
    import mujoco

    r = mujoco.Renderer(env.world.model, height=SIZE[1], width=SIZE[0])
    try:
        r.enable_depth_rendering()
        r.update_scene(env.world.data, camera="front")
        return r.render().copy()
    finally:
        r.close()


@needs_rs
def test_software_realsense_delivers_the_simulator_frames(env):
    sim = make_camera(CameraConfig(kind="sim", width=SIZE[0], height=SIZE[1]), env=env)
    raw = make_camera(CameraConfig(kind="software-realsense", width=SIZE[0], height=SIZE[1],
                                   align_depth=False), env=env)
    aligned = make_camera(CameraConfig(kind="software-realsense", width=SIZE[0],
                                       height=SIZE[1], serial="SW-ALIGN"), env=env)
    with sim, raw, aligned:
        s, r, a = sim.read(), raw.read(), aligned.read()
        assert sim.async_read().frame_number == 1  # no reader thread: renders like read
    assert np.array_equal(r.color, s.color) and np.array_equal(a.color, s.color)
    assert r.intrinsics == s.intrinsics == env.intrinsics
    holes = np.isnan(s.depth)
    assert 0.02 < holes.mean() < 0.5  # the far end of the table is out of range
    assert np.array_equal(np.isnan(r.depth), holes)
    assert np.allclose(r.depth[~holes], s.depth[~holes], rtol=0, atol=1e-6)
    mj = _raw_mujoco_depth(env)
    assert np.abs(r.depth[~holes] - mj[~holes]).max() <= 0.0005 + 1e-6  # 1 mm units, rounded
    # rs.align with identity extrinsics: each value comes from the same or a neighbouring
    # depth pixel (librealsense rounds pixel corners), or is a hole.
    same = np.isclose(a.depth, s.depth, atol=1e-6) | (np.isnan(a.depth) & holes)
    assert same.mean() > 0.95
    padded = np.pad(s.depth, 1, constant_values=np.nan)
    for v, u in np.argwhere(~same):
        assert np.isnan(a.depth[v, u]) or np.isclose(padded[v:v + 3, u:u + 3], a.depth[v, u],
                                                     atol=1e-6).any()


@needs_rs
def test_deprojected_object_points_hit_ground_truth(env):
    cam = make_camera(CameraConfig(kind="software-realsense", width=SIZE[0], height=SIZE[1],
                                   serial="SW-GT"), env=env)
    T_cam_base = np.linalg.inv(env.T_base_cam)
    with cam:
        frame = cam.async_read()  # the RealSense backend's reader thread
        assert cam.async_read().frame_number == frame.frame_number + 1
    objects = env.oracle_objects()
    assert objects
    for o in objects:
        u, v = o.top_center_px
        z = depth_at(frame, u, v, radius=2)
        p = deproject_pixel_to_point(frame.intrinsics, (u, v), z)
        truth = T_cam_base[:3, :3] @ np.array(o.position) + T_cam_base[:3, 3]
        assert np.linalg.norm(p - truth) < 0.004, o.name  # 4 mm at 160x120, ~0.5 m away


@needs_rs
def test_software_realsense_recording_plays_back_through_realsense(env, tmp_path):
    bag = str(tmp_path / "sim.db3")
    cfg = CameraConfig(kind="software-realsense", width=SIZE[0], height=SIZE[1],
                       serial="SW-REC", record_path=bag)
    with make_camera(cfg, env=env) as cam:
        live = [cam.read() for _ in range(2)]
    with make_camera(CameraConfig(kind="realsense", path=bag)) as play:
        back = play.read()
        assert play.serial == "SW-REC"
    assert np.array_equal(back.color, live[0].color) and back.intrinsics == live[0].intrinsics
    assert np.array_equal(np.isnan(back.depth), np.isnan(live[0].depth))
    assert np.allclose(back.depth, live[0].depth, atol=1e-6, equal_nan=True)


def test_sim_camera_owns_an_env_when_given_none():
    with make_camera(CameraConfig(kind="sim", width=SIZE[0], height=SIZE[1])) as cam:
        f = cam.read()
        assert f.color.shape == (SIZE[1], SIZE[0], 3) and f.depth_scale == 0.001
        with pytest.raises(ConfigError, match="renders"):  # the simulator's camera: runtime
            make_camera(CameraConfig(kind="sim", width=320, height=240), env=cam.env).connect()


# ----------------------------------------------------------------------------- file source
def test_file_source_npz_round_trip_loop_and_resample(tmp_path):
    depth = np.full((60, 80), 0.75, np.float32)
    depth[:5] = np.nan
    frames = [_frame(n, depth if n else depth * 2) for n in range(3)]
    path = tmp_path / "frames.npz"
    save_npz(path, frames)
    with make_camera(CameraConfig(kind="file", path=str(path), width=80, height=60)) as cam:
        back = [cam.read() for _ in range(3)]
        with pytest.raises(EndOfStream):
            cam.read()
    for a, b in zip(frames, back, strict=True):
        assert np.array_equal(a.color, b.color) and a.intrinsics == b.intrinsics
        assert np.array_equal(a.depth, b.depth, equal_nan=True)
        assert a.timestamp_s == b.timestamp_s and a.frame_number == b.frame_number
    cfg = CameraConfig(kind="file", path=str(path), width=40, height=30, loop=True)
    with make_camera(cfg) as cam:
        small = [cam.async_read() for _ in range(4)]
    assert small[3].color[0, 0, 0] == 0 and small[3].frame_number == 3  # looped
    assert small[1].intrinsics == INTR.scaled(40, 30) and small[1].depth.shape == (30, 40)
    assert np.isnan(small[1].depth[:2]).all() and np.allclose(small[1].depth[3:], 0.75)


def test_file_source_png_directory_and_animated_image(tmp_path):
    rng = np.random.default_rng(3)
    colors = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(2)]
    for i, c in enumerate(colors):
        Image.fromarray(c).save(tmp_path / f"{i:04d}.png")
    Image.fromarray(np.full((60, 80), 1234, np.uint16)).save(tmp_path / "0000.depth.png")
    (tmp_path / "camera.json").write_text('{"fx": 70, "fy": 70, "ppx": 40, "ppy": 30, '
                                          '"depth_scale": 0.0005}')
    with make_camera(CameraConfig(kind="file", path=str(tmp_path), width=80, height=60)) as cam:
        a, b = cam.read(), cam.read()
    assert np.array_equal(a.color, colors[0]) and np.array_equal(b.color, colors[1])
    assert a.intrinsics == INTR and np.allclose(a.depth, 0.617) and b.depth is None
    gif = tmp_path / "clip.gif"
    pages = [Image.fromarray(np.full((60, 80, 3), v, np.uint8)) for v in (0, 128, 255)]
    pages[0].save(gif, save_all=True, append_images=pages[1:], duration=50)
    with make_camera(CameraConfig(kind="file", path=str(gif), width=80, height=60)) as cam:
        values = [int(cam.read().color.mean()) for _ in range(3)]
    assert values == [0, 128, 255]
    with pytest.raises(DriverConfigError, match=r"needs config\.path"):
        make_camera(CameraConfig(kind="file"))


# ----------------------------------------------------------------------------- hardware
@pytest.mark.hardware
@needs_rs
def test_physical_realsense_delivers_aligned_depth():
    if not rs.context().query_devices():
        pytest.skip("no RealSense connected (hardware test)")
    with make_camera(CameraConfig(kind="realsense", timeout_s=5.0)) as cam:
        f = cam.async_read()
    assert f.color.shape == (480, 640, 3) and f.depth.shape == (480, 640)
    assert 0 < cam.depth_scale < 0.01 and np.isfinite(f.depth).mean() > 0.3
