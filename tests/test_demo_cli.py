"""The embedded default through the CLI: the expert solves every task and a picture is saved."""

import json

from PIL import Image

from llara_edge.cli.main import main


def test_demo_runs_expert_and_saves_picture(tmp_path, capsys):
    code = main(["demo", "--episodes", "1", "--size", "160x120", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and report["success"] == 1.0
    assert set(report["table"]) == {"visual_manipulation", "rotate", "scene_understanding",
                                    "reach"}
    picture = tmp_path / "scene.png"
    assert report["picture"] == str(picture)
    assert Image.open(picture).size == (160, 120)
    assert "saved a picture of a scene" in out


def test_no_arguments_means_run_on_the_simulator(monkeypatch):
    seen = {}
    import llara_edge.cli.run as run

    monkeypatch.setattr(run, "run", lambda args: seen.setdefault("args", args) and 0)
    assert main([]) == 0
    args = seen["args"]
    assert args.command == "run" and args.episodes == 3
    assert args.camera is None and args.arm is None  # the robot TOML's simulator defaults


def test_bad_size_is_a_clear_error(capsys):
    assert main(["demo", "--size", "big"]) == 2
    assert "--size must look like 640x480" in capsys.readouterr().err
