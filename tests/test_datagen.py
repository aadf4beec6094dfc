"""The data generator: reproducible, atomic, and every sample round-trips through the parsers."""

import json
from dataclasses import replace

import pytest

from llara_edge.errors import ConfigError
from llara_edge.formats import (
    parse_detection,
    parse_llara_first_step,
    parse_llarva_answer,
    parse_localization,
)
from llara_edge.formats.llarva import thin_trace
from llara_edge.sim.datagen import TRAIN_SEED_BASE, DatagenConfig, generate

SMALL = DatagenConfig(episodes=1, width=160, height=120)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("dg") / "data"
    summary = generate(SMALL, out)
    return out, summary


def test_layout_and_counts(dataset):
    out, summary = dataset
    assert {p.name for p in out.iterdir()} == {"images", "llara.json", "llarva.json", "meta.json"}
    llara = json.loads((out / "llara.json").read_text())
    llarva = json.loads((out / "llarva.json").read_text())
    assert summary["counts"] == {"llara": len(llara), "llarva": len(llarva)}
    assert all(v["expert_success"] == 1.0 for v in summary["episodes"].values())
    assert all(s >= TRAIN_SEED_BASE for v in summary["episodes"].values() for s in v["seeds"])
    for rec in llara + llarva:
        assert (out / rec["image"]).is_file()
        human, gpt = rec["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert human["value"].startswith("<image>\n")
    tasks = {rec["meta"]["task"] for rec in llara}
    assert tasks == {"inbc", "dinbc", "localisation", "detection"}
    # every behaviour-cloning answer carries its "Step k: " header (what training records)
    n_bc = sum(rec["meta"]["task"] in ("inbc", "dinbc") for rec in llara)
    assert summary["answer_forms"] == {"numbered": n_bc, "unnumbered": 0} and n_bc
    assert json.loads((out / "meta.json").read_text())["answer_forms"] == summary["answer_forms"]
    assert {rec["meta"]["task"] for rec in llarva} <= {"llarva_action", "llarva_trace"}
    assert llarva, "the reach family must give LLARVA samples"


def test_every_answer_parses(dataset):
    out, _ = dataset
    parsers = {"inbc": parse_llara_first_step, "dinbc": parse_llara_first_step,
               "localisation": parse_localization, "detection": parse_detection}
    for rec in json.loads((out / "llara.json").read_text()):
        parsers[rec["meta"]["task"]](rec["conversations"][1]["value"])
    for rec in json.loads((out / "llarva.json").read_text()):
        action = parse_llarva_answer(rec["conversations"][1]["value"], n_joints=5)
        assert (action.trace is not None) == (rec["meta"]["task"] == "llarva_trace")


def test_llarva_samples_speak_llarva(dataset, tmp_path):
    """LLARVA's training wording ("train") for plain samples, the pre-release trajectory
    question and answer for the others, the variant recorded in each sample and meta.json;
    the trajectory runs from the current tip to the episode's end (find_tj's thinning); the
    history rows carry LLARVA's pose noise (pose_noise=0 gives other rows, same answers)."""
    out, summary = dataset
    assert summary["config"]["llarva_prompt"] == "train"
    assert summary["config"]["llarva_trace_prompt"] == "trace"
    records = json.loads((out / "llarva.json").read_text())
    assert {r["meta"]["prompt_variant"] for r in records} == {"train", "trace"}
    steps = {r["meta"]["seed"]: 1 + max(q["meta"]["step"] for q in records
                                        if q["meta"]["seed"] == r["meta"]["seed"])
             for r in records}
    for rec in records:
        human, gpt = (c["value"] for c in rec["conversations"])
        assert human.startswith('<image>\nYou are a SO-101 robot using the joint control. '
                                'The task is "')
        if rec["meta"]["step"] == 0:
            assert "[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [" \
                in human
        if rec["meta"]["prompt_variant"] == "train":
            assert human.endswith("]]. Can you predict action of the next 1 step?")
            assert ". The trajectory: " not in gpt
            continue
        assert human.endswith("]], can you predict action of the next 1 step and the "
                              "trajectories of the end effector?")
        assert gpt.startswith("The next action step: [") and "]. The trajectory: [[" in gpt
        n = steps[rec["meta"]["seed"]] - rec["meta"]["step"] + 1  # now, then every target
        assert len(parse_llarva_answer(gpt, 5).trace) == len(thin_trace([(0, 0)] * n))
    generate(replace(SMALL, families=("reach",), pose_noise=0.0), tmp_path / "quiet")
    quiet = json.loads((tmp_path / "quiet" / "llarva.json").read_text())
    assert [r["conversations"][1] for r in quiet] == [r["conversations"][1] for r in records]
    assert all(a["conversations"][0] != b["conversations"][0]
               for a, b in zip(quiet, records, strict=True) if a["meta"]["step"] > 0)


def test_multistep_samples_carry_history(dataset):
    out, _ = dataset
    later = [r for r in json.loads((out / "llara.json").read_text())
             if r["meta"]["task"] == "inbc" and r["meta"]["step"] > 0]
    assert later, "scene_understanding should need more than one step"
    for rec in later:
        step, prompt = rec["meta"]["step"], rec["conversations"][0]["value"]
        assert "\nYou have finished: Step 1: Pick up the object at" in prompt
        assert rec["conversations"][1]["value"].startswith(f"Step {step + 1}: ")


def test_reproducible_and_seed_dependent(dataset, tmp_path):
    out, _ = dataset
    again = tmp_path / "again"
    generate(SMALL, again)
    assert (again / "llara.json").read_bytes() == (out / "llara.json").read_bytes()
    for img in (out / "images").iterdir():
        assert (again / "images" / img.name).read_bytes() == img.read_bytes()
    other = tmp_path / "other"
    generate(DatagenConfig(episodes=1, width=160, height=120, seed=1,
                           families=("visual_manipulation",)), other)
    assert (other / "llara.json").read_bytes() != (out / "llara.json").read_bytes()


def test_refuses_to_clobber_and_leaves_nothing_on_failure(dataset, tmp_path, monkeypatch):
    out, _ = dataset
    with pytest.raises(ConfigError):
        generate(SMALL, out)
    import llara_edge.sim.datagen as dg

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(dg, "_run_episode", boom)
    target = tmp_path / "never"
    with pytest.raises(RuntimeError):
        generate(SMALL, target)
    assert list(tmp_path.iterdir()) == [], "no half-written directory may remain"


def test_cli_records_the_llarva_prompt(tmp_path, capsys):
    from llara_edge.cli.main import main

    out = tmp_path / "cli"
    assert main(["datagen", "--out", str(out), "--episodes", "1", "--families", "reach",
                 "--size", "160x120", "--llarva-prompt", "eval"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["llarva_prompt"] == "eval"
    records = json.loads((out / "llarva.json").read_text())
    plain = [r for r in records if r["meta"]["task"] == "llarva_action"]
    assert plain and all(r["meta"]["prompt_variant"] == "eval" and r["conversations"][0][
        "value"].endswith("]], can you predict action of the next 1 step?") for r in plain)


def test_bad_config():
    with pytest.raises(ConfigError):
        DatagenConfig(families=("juggling",))
    with pytest.raises(ConfigError):
        DatagenConfig(episodes=0)
    with pytest.raises(ConfigError):
        DatagenConfig(llara_variants=("dinbc", "zero-shot"))
    with pytest.raises(ConfigError, match="llarva_prompt"):
        DatagenConfig(llarva_prompt="trace")  # asks for a trajectory the sample lacks
    with pytest.raises(ConfigError, match="llarva_trace_prompt"):
        DatagenConfig(llarva_trace_prompt="eval")
