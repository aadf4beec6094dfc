"""Policy over an exported tiny-llara: the same actions through torch, gguf f16 and onnx on
simulator frames, constrained == free greedy where free is well-formed, the step record,
typed errors, and manifest tampering refused with the file named."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("onnxruntime")

from runtime_artifact import grammar_cache, shared_artifact

from llara_edge.actions import JointStepAction
from llara_edge.cases import sim_frames
from llara_edge.errors import ArtifactError, ConfigError, InputError, ParseError
from llara_edge.runtime.config import RuntimeConfig
from llara_edge.runtime.policy import STAGES, Policy

K_FRAMES = 6
ENGINES = {  # name -> (llm, vision)
    "torch": ("torch", "torch"),
    "gguf": ("gguf", "onnx"),
    "gguf_fused": ("gguf", "onnx+fused"),
    "onnx": ("onnx", "onnx"),
}


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return shared_artifact(tmp_path_factory)


@pytest.fixture(scope="module")
def make_config(tmp_path_factory):
    cache = grammar_cache(tmp_path_factory)

    def make(**kw) -> RuntimeConfig:
        base = dict(variant="f16", threads=1, n_ctx=512, max_new_tokens=96,
                    grammar_cache_dir=cache)
        return RuntimeConfig(**{**base, **kw})

    return make


@pytest.fixture(scope="module")
def cases():
    os.environ.setdefault("MUJOCO_GL", "egl")
    return sim_frames(K_FRAMES, 160, 120, seed=7)


@pytest.fixture(scope="module")
def policies(art, make_config):
    made = {name: Policy.load(art, make_config(llm=llm, vision=vision))
            for name, (llm, vision) in ENGINES.items()}
    made["gguf_free"] = Policy.load(art, make_config(constrained=False))
    made["gguf_nodraft"] = Policy.load(art, make_config(draft_tokens=0))
    yield made
    for p in made.values():
        p.close()


@pytest.fixture(scope="module")
def steps(policies, cases):
    return {name: [p.act(c.rgb, c.user_text) for c in cases]
            for name, p in policies.items() if name != "gguf_free"}


def test_every_backend_gives_the_same_actions(steps):
    ref = [s.action for s in steps["torch"]]
    for name, got in steps.items():
        assert [s.action for s in got] == ref, (name, [s.text for s in got])
        assert [s.text for s in got] == [s.text for s in steps["torch"]], name


def test_constrained_equals_free_greedy_when_free_is_well_formed(policies, steps, cases):
    same = 0
    for case, cons in zip(cases, steps["gguf"], strict=True):
        try:
            free = policies["gguf_free"].act(case.rgb, case.user_text)
        except ParseError:
            continue
        assert free.action == cons.action, (free.text, cons.text)
        assert cons.forward_passes < free.forward_passes
        same += 1
    assert same >= K_FRAMES // 2, same  # the trained policy mostly answers well-formed


def test_prompt_lookup_drafts_save_passes_not_tokens(steps):
    drafted, plain = steps["gguf"], steps["gguf_nodraft"]
    assert [s.tokens for s in drafted] == [s.tokens for s in plain]
    assert sum(s.forward_passes for s in drafted) < sum(s.forward_passes for s in plain)


def test_quantised_k_cache_is_opt_in_and_still_well_formed(art, make_config, policies, cases):
    assert policies["gguf"].engines["cache_type_k"] == "f16"  # llama.cpp's default
    with Policy.load(art, make_config(cache_type_k="q8_0")) as policy:
        assert policy.engines["cache_type_k"] == "q8_0"
        for case in cases:
            step = policy.act(case.rgb, case.user_text)  # constrained: always well-formed
            assert step.action is not None and step.forward_passes < step.n_tokens


def test_parser_follows_the_grammar_in_use(art, make_config, cases):
    with Policy.load(art, make_config(grammar="llarva", n_joints=5)) as policy:
        step = policy.act(cases[0].rgb, cases[0].user_text)
    assert isinstance(step.action, JointStepAction) and len(step.action.joints) == 5


def test_policy_step_record(policies, steps):
    for step in steps["gguf_fused"]:
        assert set(step.timings) == set(STAGES)
        assert all(v >= 0 for v in step.timings.values())
        assert min(step.timings[k] for k in ("vision", "projector", "prefill", "decode")) > 0
        assert step.ttft_s <= sum(step.timings.values()) + 1e-3
        assert step.n_tokens == len(step.tokens) and step.forward_passes < step.n_tokens
    policy = policies["gguf"]
    assert policy.backend.n_prefix > 0 and policy.engines["variant"] == "f16"
    assert set(policy.load_timings) == {"verify", "engines", "grammar", "prefix", "warmup"}
    assert steps["onnx"][0].timings["projector"] == 0.0  # folded into vision.onnx


def test_prefix_is_computed_once(policies, cases, monkeypatch):
    policy = policies["onnx"]
    calls = []
    monkeypatch.setattr(policy.backend, "set_prefix", lambda segs: calls.append(segs))
    policy.act(cases[0].rgb, cases[0].user_text)
    policy.act(cases[1].rgb, cases[1].user_text)
    assert calls == []


def test_unconstrained_malformed_answer_is_a_parse_error(art, make_config, cases):
    with (Policy.load(art, make_config(constrained=False, max_new_tokens=4)) as policy,
          pytest.raises(ParseError)):
        policy.act(cases[0].rgb, cases[0].user_text)
    assert policy.backend.ctx.closed and policy.backend.model.closed  # by the with block


def test_bad_configs_are_config_errors(art, make_config):
    with pytest.raises(ConfigError, match="q4_k_m"):
        Policy.load(art, make_config(variant="q4_k_m"))
    with pytest.raises(ConfigError, match="providers"):
        make_config(providers=("npu",))
    with pytest.raises(ConfigError, match="unknown vision engine"):
        Policy.load(art, make_config(vision="clip.cpp"))


def _copy(art, tmp_path):
    dest = tmp_path / "art"
    shutil.copytree(art, dest)
    return dest


def test_tampered_artifacts_are_refused_with_the_file_named(art, make_config, tmp_path):
    bad = _copy(art, tmp_path)
    with open(bad / "llm-f16.gguf", "r+b") as fh:
        fh.seek(4000)
        byte = fh.read(1)
        fh.seek(4000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ArtifactError, match=r"llm-f16\.gguf.*sha256"):
        Policy.load(bad, make_config())
    Policy.load(bad, make_config(llm="onnx")).close()  # files it does not use are not read
    os.truncate(bad / "vision.onnx", 100)
    with pytest.raises(ArtifactError, match=r"vision\.onnx is 100 bytes"):
        Policy.load(bad, make_config(llm="onnx"))
    (bad / "embed.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"missing artifact file .*embed\.onnx"):
        Policy.load(bad, make_config(llm="onnx", vision="torch"))
    (bad / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        Policy.load(bad, make_config())


def test_frames_must_be_rgb_uint8(policies, cases):
    with pytest.raises(InputError, match="uint8"):
        policies["gguf"].act(cases[0].rgb.astype(np.float32), cases[0].user_text)


def _with_history(user_text: str, n: int) -> str:
    from llara_edge.actions import PickPlaceAction
    from llara_edge.formats import format_history

    acts = [PickPlaceAction((0.2 + 0.1 * i, 0.3), (0.6, 0.5), 0) for i in range(n)]
    return user_text + format_history(acts)


def test_step_number_follows_the_history(policies, art, make_config, cases):
    """The answer's header is "Step k+1:" after k finished steps (one compiled grammar),
    none under numbering="unnumbered", and both parse to the same kind of action."""
    with Policy.load(art, make_config(n_ctx=1536)) as policy:
        for k in (0, 1, 3):
            step = policy.act(cases[0].rgb, _with_history(cases[0].user_text, k))
            assert step.text.startswith(f"Step {k + 1}: "), step.text
        assert len(policy.views.openings) == 3  # one opening per step number, one grammar
    with Policy.load(art, make_config(numbering="unnumbered", n_ctx=1536)) as plain:
        step = plain.act(cases[0].rgb, _with_history(cases[0].user_text, 2))
        assert not step.text.startswith("Step") and step.action.pick is not None
    with Policy.load(art, make_config(numbering="either", n_ctx=1536)) as either:
        step = either.act(cases[0].rgb, _with_history(cases[0].user_text, 2))
        assert step.text.startswith(("Step 3: ", "Pick", "Sweep")), step.text
    with pytest.raises(ConfigError, match="numbering"):
        make_config(numbering="maybe")
    with (Policy.load(art, make_config(max_steps=2, n_ctx=1536)) as short,
          pytest.raises(ConfigError, match="max_steps")):
        short.act(cases[0].rgb, _with_history(cases[0].user_text, 2))


def _record(root, **entries) -> None:
    """Set (value) or drop (None) manifest entries of an artifact copy."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in entries.items():
        manifest.pop(key, None)
        if value is not None:
            manifest[key] = value
    path.write_text(json.dumps(manifest, indent=1))


def test_numbering_default_follows_the_artifacts_answer_forms(art, make_config, cases,
                                                              tmp_path):
    """RuntimeConfig.numbering None takes the manifest's answer_forms: one form -> that form,
    both or none recorded -> either; an explicit numbering overrides it. tiny-llara's record
    (models/tiny-llara/llara_text_formats.json: numbered) reaches its export."""
    from llara_edge.runtime.artifact import Artifact

    assert RuntimeConfig().numbering is None
    assert Artifact.open(art).answer_forms == ("numbered",)
    assert Artifact.open(art).prompt_variant == "standard"
    copy = _copy(art, tmp_path)
    task = _with_history(cases[0].user_text, 1)
    for forms, want, heads in ((["numbered"], "numbered", ("Step 2: ",)),
                               (["unnumbered"], "unnumbered", ("Pick", "Sweep")),
                               (["numbered", "unnumbered"], "either", ("Step 2: ", "Pick",
                                                                       "Sweep")),
                               (None, "either", ("Step 2: ", "Pick", "Sweep"))):
        _record(copy, answer_forms=forms)
        with Policy.load(copy, make_config(n_ctx=1024)) as policy:
            assert policy.numbering == want, forms
            text = policy.act(cases[0].rgb, task).text
            assert text.startswith(heads), (forms, text)
    with Policy.load(copy, make_config(numbering="unnumbered", n_ctx=1024)) as policy:
        assert policy.numbering == "unnumbered"  # the option overrides the artifact
        assert not policy.act(cases[0].rgb, task).text.startswith("Step")


def test_prompt_variant_comes_from_the_artifact_or_the_config(art, make_config, tmp_path):
    from llara_edge.robot.policy_io import RuntimeTextPolicy, TaskPrompter, recorded_variants

    copy = _copy(art, tmp_path)
    _record(copy, prompt_variant="scene_no_final_period")
    with Policy.load(copy, make_config()) as policy:
        assert policy.prompt_variant == "scene_no_final_period"
        variants = recorded_variants(RuntimeTextPolicy(policy))
    assert variants == {"llara": "scene_no_final_period"}
    block = ("<scene><p>red block</p> at <b>(0.100, 0.200), {0.050, 0.050}</b></scene>")
    prompter = TaskPrompter(f"Put the block in {block} away.", variants=variants)
    assert block in prompter(np.zeros(5), [])  # the recorded variant's scene block is read
    with pytest.raises(ConfigError):
        TaskPrompter(f"Put the block in {block} away.")(np.zeros(5), [])
    _record(copy, prompt_variant=None)
    with Policy.load(copy, make_config(prompt_variant="standard")) as policy:
        assert policy.prompt_variant == "standard"
    with pytest.raises(ConfigError, match="prompt variant 'dotless'"):
        Policy.load(copy, make_config(prompt_variant="dotless"))
