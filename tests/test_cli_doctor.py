"""The CLI parses, lists its commands, and `doctor` reports every probe without raising."""

import json

import pytest

from llara_edge import platform as plat
from llara_edge.cli.main import COMMANDS, build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_doctor_json_has_every_probe(capsys):
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == set(plat.PROBES)
    assert report["platform"]["ok"] is True
    for probe in report.values():
        assert isinstance(probe["detail"], str) and probe["detail"]


def test_doctor_table_ends_with_json_line(capsys):
    assert main(["doctor", "--only", "platform", "serial"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("check")
    assert set(json.loads(lines[-1])) == {"platform", "serial"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64",
         "L4T R36.4.0"),
        ("# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref", "L4T R35.5.0"),
        ("# R32 (release)", "L4T R32"),
        ("garbage", None),
        ("", None),
    ],
)
def test_parse_tegra_release(text, expected):
    assert plat.parse_tegra_release(text) == expected


def test_jetson_probe_reads_release_and_model(tmp_path):
    release = tmp_path / "nv_tegra_release"
    model = tmp_path / "model"
    assert plat.probe_jetson(release, model).ok is False
    release.write_text("# R36 (release), REVISION: 3.0, GCID: 1, BOARD: generic\n")
    model.write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    probe = plat.probe_jetson(release, model)
    assert probe.ok and probe.detail == "NVIDIA Jetson AGX Orin Developer Kit, L4T R36.3.0"


def test_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["no-such-command"])
    assert exc.value.code == 2
