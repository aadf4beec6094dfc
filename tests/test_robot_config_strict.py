"""Strict robot TOMLs: unknown tables and keys, missing keys and mistyped values are refused.

Each bad name is reported (all of them in one ConfigError) with the nearest valid name, the
file and the line of the name; through the CLI the error is one line and exit code 2, before
anything opens. The safety case: a misspelled `[workspace]` must not leave the default box
in force (the arm would execute moves that the owner's box refuses).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from llara_edge.errors import ConfigError
from llara_edge.hw_drivers.camera_base import CameraConfig
from llara_edge.robot.config import BUNDLED_CONFIG, HandEye, RobotConfig
from llara_edge.robot.toml_lines import key_lines

LLARA_EDGE = str(Path(sys.executable).with_name("llara-edge"))
BUNDLED = (Path(__file__).parents[1] / "llara_edge" / "robot" / BUNDLED_CONFIG).read_text()


def line_of(text: str, pattern: str, nth: int = 0) -> int:
    """1-based line of the nth line that starts with `pattern` (the test's own search)."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(pattern)]
    return hits[nth]


def write(tmp_path: Path, text: str, name: str = "robot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        RobotConfig.load(path)
    message = str(info.value)
    assert str(path) in message
    for python_words in ("__init__", "unexpected keyword", "positional argument", "Traceback"):
        assert python_words not in message
    return message


# ----------------------------------------------------------------------------- tables
def test_misspelled_workspace_table_is_refused_not_ignored(tmp_path):
    # the owner's box: x <= 0.20 m; the bundled default reaches x = 0.45 m
    narrow = BUNDLED.replace("max = [0.45, 0.35, 0.3]", "max = [0.2, 0.35, 0.3]")
    assert narrow != BUNDLED
    far = (0.35, 0.0, 0.1)  # a tool-tip target the owner's box refuses
    cfg = RobotConfig.load(write(tmp_path, narrow, "good.toml"))
    assert not cfg.workspace.contains(far)
    assert RobotConfig.default().workspace.contains(far)  # what a silent fallback would allow

    misspelled = narrow.replace("[workspace]", "[work_space]")
    message = load_error(tmp_path, misspelled)
    line = line_of(misspelled, "[work_space]")
    assert message.endswith(f"line {line}: [work_space]: unknown table; did you mean "
                            "[workspace]?"), message


def test_every_bad_name_is_reported_at_once_with_its_line(tmp_path):
    text = (BUNDLED.replace("baudrate = 1000000", "baud_rate = 1000000")
            .replace("lower_rad = -1.74533", "lower_rads = -1.74533")  # 2nd joint only
            .replace("width = 320", "widht = 320")
            .replace("max_consecutive_faults = 3", "max_consecutive_fault = 3")
            .replace("[hand_eye]", "[hand_eye]\nrms_residual = 1.5"))
    message = load_error(tmp_path, text)
    expected = [
        (line_of(text, "baud_rate"), "bus.baud_rate: unknown key; did you mean baudrate?"),
        (line_of(text, "lower_rads"),
         "joints[1].lower_rads: unknown key; did you mean lower_rad?"),
        (line_of(text, "widht"), "camera.widht: unknown key; did you mean width?"),
        (line_of(text, "max_consecutive_fault "),
         "safety.max_consecutive_fault: unknown key; did you mean max_consecutive_faults?"),
        (line_of(text, "rms_residual "),
         "hand_eye.rms_residual: unknown key; did you mean rms_residual_mm?"),
        # the renamed key also leaves the joint without its required lower limit
        (line_of(text, "[[joints]]", 1), "joints[1].lower_rad: required key is missing"),
    ]
    assert message.startswith(f"robot config {tmp_path / 'robot.toml'}: 6 errors: ")
    for line, text_ in expected:
        assert f"line {line}: {text_}" in message, (text_, message)
    shown = [int(n) for n in re.findall(r"line (\d+):", message)]
    assert shown == sorted(shown)  # in file order


def test_dotted_keys_inline_tables_and_arrays_of_inline_tables_get_their_lines(tmp_path):
    text = "\n".join([
        'name = "dotted"',                                                          # 1
        'bus.kind = "feetech"',                                                     # 2
        'bus.baud_rate = 9600',                                                     # 3
        'tool = { kind = "suction", motor = "gripper", colour = "red", open_rad = 0.0, '
        'closed_rad = 1.0 }',                                                       # 4
        'camera = { kind = "sim", hieght = 240 }',                                  # 5
        'joints = [',                                                               # 6
        '  { name = "a", id = 1, lower_rad = -1.0, upper_rad = 1.0 },',             # 7
        '  { name = "gripper", id = 2, lower_rads = -0.1, upper_rad = 1.5 },',      # 8
        ']',
    ])
    message = load_error(tmp_path, text)
    assert "line 3: bus.baud_rate: unknown key; did you mean baudrate?" in message
    assert "line 4: tool.colour: unknown key; valid: closed_rad, kind, motor, open_rad" \
        in message
    assert "line 5: camera.hieght: unknown key; did you mean height?" in message
    assert "line 8: joints[1].lower_rads: unknown key; did you mean lower_rad?" in message
    assert "line 8: joints[1].lower_rad: required key is missing" in message
    assert message.count("line ") == 5


def test_joint_and_camera_key_typos(tmp_path):
    text = BUNDLED.replace("offset_rad = 0.02", "ofset_rad = 0.02").replace(
        'kind = "sim"\n', 'kind = "sim"\nsereal = "123"\n')
    message = load_error(tmp_path, text)
    assert f"line {line_of(text, 'ofset_rad')}: joints[2].ofset_rad: unknown key; did you " \
           "mean offset_rad?" in message
    assert f"line {line_of(text, 'sereal')}: camera.sereal: unknown key; did you mean " \
           "serial?" in message


@pytest.mark.parametrize("old, new, expected", [
    ("[workspace]", "[[workspace]]", "workspace: expected a table, got a list of 1"),
    ("[[joints]]\nname = \"gripper\"", "[joint]\nname = \"gripper\"",
     "[joint]: unknown table; did you mean [[joints]]?"),
    ("[safety]", "[Safety]", "[Safety]: unknown table; did you mean [safety]?"),
    ("[bus]", "[bus.extra]\nx = 1\n[bus]", "[bus.extra]: unknown table; valid: baudrate, kind"),
    ('name = "so101-sim"', 'nmae = "so101-sim"', "nmae: unknown key; did you mean name?"),
])
def test_unknown_and_misplaced_tables(tmp_path, old, new, expected):
    text = BUNDLED.replace(old, new, 1)
    assert text != BUNDLED
    assert expected in load_error(tmp_path, text)


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("old, new, expected", [
    ("baudrate = 1000000", 'baudrate = "fast"',
     "bus.baudrate: expected an integer, got string 'fast'"),
    ("timeout_s = 0.5", 'timeout_s = "0.5"',
     "bus.timeout_s: expected a finite number, got string '0.5'"),
    ("min = [-0.05, -0.35, -0.002]", "min = [-0.05, -0.35]",
     "workspace.min: expected a list of 3 numbers, got a list of 2"),
    ("max = [0.45, 0.35, 0.3]", 'max = [0.45, "a", 0.3]',
     "workspace.max[1]: expected a finite number, got string 'a'"),
    ("translation = [0.5, 0.0, 0.45]", "translation = 0.5",
     "hand_eye.translation: expected a list of 3 numbers, got float 0.5"),
    ("[1.0, 0.0, 0.0], [0.0", "[1.0, 0.0], [0.0",
     "hand_eye.rotation[1]: expected a list of 3 numbers, got a list of 2"),
    ("id = 3", "id = 3.0", "joints[2].id: expected an integer, got float 3.0"),
    ("upper_rad = 1.69", "upper_rad = nan", "joints[2].upper_rad: expected a finite number"),
    ("torque_off_on_stop = false", 'torque_off_on_stop = "no"',
     "safety.torque_off_on_stop: expected true or false, got string 'no'"),
    ("width = 320", "width = true", "camera.width: expected an integer, got boolean true"),
    ("[bus]\nkind", "bus = 5\n[xbus]\nkind", "bus: expected a table, got integer 5"),
])
def test_wrong_value_types_name_the_field(tmp_path, old, new, expected):
    text = BUNDLED.replace(old, new, 1)
    assert text != BUNDLED
    message = load_error(tmp_path, text)
    assert expected in message, message


def test_missing_required_keys_name_the_key(tmp_path):
    text = BUNDLED.replace("id = 4\n", "", 1)
    message = load_error(tmp_path, text)
    assert f"line {line_of(text, '[[joints]]', 3)}: joints[3].id: required key is " \
           "missing" in message


def test_value_checks_still_apply_and_name_the_table(tmp_path):
    text = BUNDLED.replace("min = [-0.05, -0.35, -0.002]", "min = [0.5, -0.35, -0.002]")
    message = load_error(tmp_path, text)
    assert f"line {line_of(text, '[workspace]')}: workspace: workspace needs min < max" \
        in message


def test_toml_syntax_errors_keep_line_and_column(tmp_path):
    text = BUNDLED.replace("retries = 3", "retries = = 3")
    message = load_error(tmp_path, text)
    assert "invalid TOML" in message and message.startswith("robot config ")
    assert f"line {line_of(text, 'retries')}, column" in message


# ----------------------------------------------------------------------------- round trip
def test_saved_configs_load_back(tmp_path):
    cfg = RobotConfig.default()
    assert cfg.name == "so101-sim"
    custom = cfg.replace(
        camera=CameraConfig(kind="realsense", width=640, height=480, serial="0123",
                            depth_scale=0.00025, loop=True),
        hand_eye=HandEye.from_matrix(cfg.hand_eye.matrix, rms_residual_mm=1.25, points=12,
                                     source="calibrate"))
    path = custom.save(tmp_path / "custom.toml")
    assert RobotConfig.load(path) == custom


def test_key_lines_follows_every_toml_construct():
    text = "\n".join([
        'name = "x"  # [not] a table',           # 1
        'a.b = 1',                                # 2
        '"q.k" = 2',                              # 3
        's = """',                                # 4
        '[fake]',                                 # 5  inside a multi-line string
        'fake = 1"""',                            # 6
        'arr = [',                                # 7
        '  {p = 1},',                             # 8
        ']',                                      # 9
        '[[joints]]',                             # 10
        'id = 1',                                 # 11
        '[[joints]]',                             # 12
        'lower_rads = 2',                         # 13
        '[joints.sub]',                           # 14
        'z = 3',                                  # 15
        "lit = '''x'''",                          # 16
        'inl = { x = 1, y.z = 2 }',               # 17
    ])
    lines = key_lines(text)
    assert lines[("name",)] == 1 and lines[("a", "b")] == 2 and lines[("q.k",)] == 3
    assert ("fake",) not in lines and lines[("s",)] == 4
    assert lines[("arr", 0, "p")] == 8
    assert lines[("joints",)] == 10 and lines[("joints", 0, "id")] == 11
    assert lines[("joints", 1)] == 12 and lines[("joints", 1, "lower_rads")] == 13
    assert lines[("joints", 1, "sub")] == 14 and lines[("joints", 1, "sub", "z")] == 15
    assert lines[("joints", 1, "sub", "lit")] == 16
    assert lines[("joints", 1, "sub", "inl", "y", "z")] == 17


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("old, new", [
    ("[workspace]", "[work_space]"),
    ("baudrate = 1000000", "baud_rate = 1000000"),
])
def test_cli_refuses_a_bad_robot_toml_in_one_line(tmp_path, old, new):
    path = write(tmp_path, BUNDLED.replace(old, new), "bad.toml")
    out = tmp_path / "out"
    proc = subprocess.run([LLARA_EDGE, "run", "--robot", str(path), "--episodes", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    name = new.split(" ")[0]
    assert lines[0].startswith(f"llara-edge run: error: robot config {path}: line ")
    assert name in lines[0] and "did you mean" in lines[0]
    assert proc.stdout == "" and not out.exists()  # refused before anything opened
