"""Training pipeline: tokenizer rules, LLaVA label masking, and a loop that really learns."""

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the export extra")

from llara_edge.errors import ConfigError  # noqa: E402
from llara_edge.formats import VICUNA_V1, build_prompt  # noqa: E402
from llara_edge.sim.datagen import DatagenConfig, generate  # noqa: E402
from llara_export.models.llava import IMAGE_TOKEN_INDEX, TinyConfig, build_tiny  # noqa: E402
from llara_export.text_formats import (  # noqa: E402
    TEXT_FORMATS,
    manifest_entries,
    read_text_formats,
    write_text_formats,
)
from llara_export.training.data import (  # noqa: E402
    IGNORE_INDEX,
    DataConfig,
    TrainingSet,
    answer_forms,
    load_records,
    text_only,
    tokenize_sample,
)
from llara_export.training.tokenizer import (  # noqa: E402
    TokenizerConfig,
    corpus_texts,
    encode_multimodal,
    train_tokenizer,
)
from llara_export.training.train import TrainConfig, train  # noqa: E402


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "data"
    generate(DatagenConfig(families=("visual_manipulation", "reach"), episodes=2, width=160,
                           height=120, paraphrase_prob=0.0), out)
    return out


@pytest.fixture(scope="module")
def tok(dataset_dir, tmp_path_factory):
    records = [r for name in ("llara.json", "llarva.json")
               for r in json.loads((dataset_dir / name).read_text())]
    return train_tokenizer(corpus_texts(records), tmp_path_factory.mktemp("tok"),
                           TokenizerConfig(vocab_size=512))


def test_tokenizer_is_llama_like(tok):
    sp = tok.sp
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    pieces = [sp.IdToPiece(i) for i in tok.encode("<b>(0.443, 0.569)</b> -359")]
    digits = [p for p in pieces if any(c.isdigit() for c in p)]
    assert digits == list("0443" "0569" "359")  # every digit its own piece
    assert sp.IdToPiece(tok.encode("a\nb")[1]) == "<0x0A>"  # newline as a byte, as LLaMA
    two = "at <b>(0.301,  0.727)</b>"
    assert tok.decode(tok.encode(two)) == two  # no whitespace folding
    assert tok.vocab_size <= 512


def test_tokenizer_config_is_validated():
    with pytest.raises(ConfigError):
        TokenizerConfig(vocab_size=10)
    with pytest.raises(ConfigError):
        TokenizerConfig(model_type="wordpiece")


def test_labels_mask_everything_but_the_answer(tok):
    prompt = "<image>\n<task>Put the <p>red block</p> into the <p>green pan</p>.</task>"
    answer = ("Step 1: Pick up the <p>red block</p> at <b>(0.312, 0.617)</b>, rotate <r>[0]</r> "
              "degrees, and drop it at <b>(0.742, 0.547)</b>.")
    ids, labels = tokenize_sample(tok, prompt, answer)
    assert len(ids) == len(labels) and ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert ids.count(IMAGE_TOKEN_INDEX) == 1
    head = encode_multimodal(tok, build_prompt(VICUNA_V1, prompt))
    assert ids[: len(head)] == head  # the inference prompt is a prefix of the training ids
    assert all(t == IGNORE_INDEX for t in labels[: len(head)])
    learned = labels[len(head):]
    assert IGNORE_INDEX not in learned and learned[-1] == tok.eos_id
    assert tok.decode(learned).strip() == answer


def test_multimodal_encoding_matches_the_runtime_tokenizer(tok):
    prompt = build_prompt(VICUNA_V1, "<image>\nReach the red block.")
    assert encode_multimodal(tok, prompt) == tok.tokenizer_image_token(prompt)
    assert encode_multimodal(tok, prompt + " ASSISTANT: x</s>")[-1] == tok.eos_id


def test_training_set_groups_and_batches(dataset_dir, tok):
    ds = TrainingSet.build(load_records([dataset_dir]), tok, DataConfig(image_size=56))
    assert {"dinbc/visual_manipulation", "inbc/visual_manipulation", "localisation",
            "detection"} <= set(ds.groups)
    assert any(g.startswith("llarva_") for g in ds.groups)
    import numpy as np

    batch = ds.batch(np.random.default_rng(0), "dinbc/visual_manipulation", 3)
    assert batch.pixel_values.shape == (3, 3, 56, 56)
    assert batch.input_ids.shape == batch.labels.shape == batch.attention_mask.shape
    assert bool((batch.labels[~batch.attention_mask] == IGNORE_INDEX).all())


def test_text_only_variant_keeps_the_task_and_history(dataset_dir, tok):
    records = load_records([dataset_dir])
    rec = next(r for r in records if r.group == "dinbc/visual_manipulation")
    short = text_only(rec)
    assert short.group == "text/dinbc/visual_manipulation" and short.image is None
    assert short.prompt == rec.prompt.split("\n")[1] and short.prompt.startswith("<task>")
    assert short.answer == rec.answer
    ds = TrainingSet.build([rec, short], tok, DataConfig(image_size=56))
    import numpy as np

    batch = ds.batch(np.random.default_rng(0), short.group, 2)
    assert batch.pixel_values is None and IMAGE_TOKEN_INDEX not in batch.input_ids
    assert len(ds.samples[short.group][0][0]) < len(ds.samples[rec.group][0][0]) - 100


def test_answer_forms_of_the_records_are_written_next_to_the_weights(dataset_dir, tmp_path):
    """Training knows which "Step k: " forms its LLaRA answers had (the simulator's data:
    numbered only) and writes them, with the prompt variant, where the export reads them."""
    from dataclasses import replace

    records = load_records([dataset_dir])
    assert answer_forms(records) == ("numbered",)
    bare = [replace(r, answer=re.sub(r"^Step \d+: ", "", r.answer)) for r in records]
    assert answer_forms(bare) == ("unnumbered",)
    assert answer_forms(records + bare) == ("numbered", "unnumbered")
    assert answer_forms([r for r in records if r.group.startswith("llarva")]) == ()
    assert read_text_formats(tmp_path) == {}  # a released checkpoint: nothing recorded
    write_text_formats(tmp_path, answer_forms(records), "standard")
    assert json.loads((tmp_path / TEXT_FORMATS).read_text()) == {
        "answer_forms": ["numbered"], "prompt_variant": "standard"}
    variants = ("standard", "scene_no_final_period")
    assert manifest_entries(tmp_path, variants) == read_text_formats(tmp_path)
    assert manifest_entries(tmp_path, ()) == {"answer_forms": ["numbered"]}  # no variants
    assert manifest_entries(tmp_path, variants, ("unnumbered", "numbered"),
                            "scene_no_final_period") == {
        "answer_forms": ["numbered", "unnumbered"], "prompt_variant": "scene_no_final_period"}
    for bad, message in (({"answer_form": ["numbered"]}, "did you mean answer_forms"),
                         ({"answer_forms": ["numberd"]}, "did you mean numbered"),
                         ({"answer_forms": []}, "non-empty"),
                         ({"prompt_variant": "no_dot"}, "unknown prompt variant")):
        (tmp_path / TEXT_FORMATS).write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=message):
            read_text_formats(tmp_path)
    with pytest.raises(ConfigError, match="unknown answer form"):
        manifest_entries(tmp_path / "none", variants, ("roman",))


def test_lr_schedule_and_mix():
    cfg = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1,
                      mix={"a": 3.0, "b": 0.0}, default_weight=1.0)
    assert cfg.lr_at(0) == pytest.approx(1e-4) and cfg.lr_at(9) == pytest.approx(1e-3)
    assert cfg.lr_at(99) == pytest.approx(1e-4, rel=0.01)
    groups, probs = cfg.group_weights(["a", "b", "c"])
    assert groups == ["a", "c"] and probs.tolist() == [0.75, 0.25]
    with pytest.raises(ConfigError):
        TrainConfig(lr=0.0)


def _tiny(tok):
    cfg = TinyConfig(vocab_size=tok.vocab_size, image_size=56, vision_layers=1, layers=1,
                     vision_hidden=64, vision_intermediate=128, intermediate=256)
    return build_tiny(cfg, seed=0)


def test_a_few_steps_decrease_the_loss_and_resume_exactly(dataset_dir, tok, tmp_path):
    records = load_records([dataset_dir])
    records += [text_only(r) for r in records if r.group.startswith("dinbc/")]
    ds = TrainingSet.build(records, tok, DataConfig(image_size=56))
    cfg = TrainConfig(steps=24, batch_size=4, lr=3e-3, warmup_steps=2, checkpoint_every=12,
                      mix={"dinbc/visual_manipulation": 1.0,
                           "text/dinbc/visual_manipulation": 1.0}, default_weight=0.0)
    full = train(_tiny(tok), ds, cfg)
    assert set(full.groups) == set(cfg.mix)  # both kinds of batches were trained on
    assert sum(full.losses[-4:]) / 4 < 0.5 * sum(full.losses[:4]) / 4

    train(_tiny(tok), ds, cfg, state_dir=tmp_path, stop_at=12)  # interrupted, state saved
    resumed = train(_tiny(tok), ds, cfg, state_dir=tmp_path)  # picks up at step 12
    assert resumed.losses == pytest.approx(full.losses, rel=1e-4)


def test_synthetic_answers_copy_the_boxes_of_the_task_line():
    import re

    from llara_edge.formats import parse_llara_first_step
    from llara_export.training.synthetic import SynthConfig, synthetic_dinbc, synthetic_set

    box_re = re.compile(r"<b>\(([\d.]+), ([\d.]+)\), \{([\d.]+), ([\d.]+)\}</b>")
    for rec in synthetic_set(300, 0, SynthConfig(short=True)):
        boxes = [tuple(map(float, m)) for m in box_re.findall(rec.prompt)]
        action = parse_llara_first_step(rec.answer)
        assert rec.raw and rec.image is None and "\n" not in rec.prompt
        assert action.pick == pytest.approx(boxes[0][:2], abs=1e-9)
        assert action.place == pytest.approx(boxes[-1][:2], abs=1e-9)
        assert (action.rotation_deg != 0) == (len(boxes) == 1)  # rotate: one box, angle > 0
    full = synthetic_dinbc(np.random.default_rng(1), SynthConfig(short=False))
    assert not full.raw and full.prompt.startswith("<task>") and "suction cup" in full.prompt
    assert synthetic_set(20, 3) == synthetic_set(20, 3) != synthetic_set(20, 4)
    with pytest.raises(ConfigError):
        SynthConfig(centre_x=(0.5, 0.2))


def test_raw_samples_learn_only_the_answer(tok):
    from llara_export.training.data import tokenize_raw

    ids, labels = tokenize_raw(tok, "<task>Rotate it.</task>", "Step 1: done.")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(ids) == len(labels)
    learned = [t for t in labels if t != IGNORE_INDEX]
    assert learned == [*tok.encode("Step 1: done."), tok.eos_id]
    assert ids[len(ids) - len(learned):] == learned


def test_box_shift_moves_boxes_and_the_points_on_them_together():
    from llara_export.training.augment import ShiftConfig, shift_boxes, shifted_set
    from llara_export.training.data import Record

    prompt = ("<image>\n<task>Put the <p>red block</p> at <b>(0.443, 0.569), {0.076, 0.114}</b> "
              "into the <p>green pan</p> at <b>(0.698, 0.594), {0.226, 0.240}</b>.</task>\n"
              "You have finished: Step 1: Pick up the object at <b>(0.443, 0.569)</b>, rotate "
              "<r>[0]</r> degrees, and drop it at <b>(0.500, 0.500)</b>.")
    answer = ("Step 2: Pick up the <p>red block</p> at <b>(0.443,  0.569)</b>, rotate <r>[0]</r>"
              " degrees, and drop it at <b>(0.698, 0.594)</b>.")
    rec = Record("dinbc/visual_manipulation", None, prompt, answer)
    out = shift_boxes(rec, np.random.default_rng(3), ShiftConfig(max_shift=0.2))
    assert out.group == "dinbc/visual_manipulation/shift" and out.image == rec.image
    boxes = re.findall(r"<b>\((\S+), (\S+)\), \{(\S+), (\S+)\}</b>", out.prompt)
    points = re.findall(r"<b>\((\S+),\s+(\S+)\)</b>", out.answer)
    assert [b[2:] for b in boxes] == [("0.076", "0.114"), ("0.226", "0.240")]  # sizes kept
    assert points == [b[:2] for b in boxes]  # pick and place still on the (moved) centres
    assert all(abs(float(b[0]) - x) <= 0.2 + 1e-9 and b[0] != f"{x:.3f}"
               for b, x in zip(boxes, (0.443, 0.698), strict=True))
    assert re.search(r"<b>\(\S+,  \S+\)</b>", out.answer)  # LLaRA's 2-space first point kept
    assert "(0.500, 0.500)" in out.prompt  # a history point on no box stays
    history = re.findall(r"finished: .*?<b>\((\S+), (\S+)\)</b>", out.prompt)
    assert history == [boxes[0][:2]]  # a history point on a box centre moves with it
    off_box = Record("dinbc/scene_understanding", None, prompt,
                     answer.replace("(0.698, 0.594)", "(0.710, 0.600)"))
    assert shift_boxes(off_box, np.random.default_rng(0)) is None
    assert len(shifted_set([rec, off_box], 3, seed=0)) == 3
    assert shifted_set([rec], 2, seed=1) == shifted_set([rec], 2, seed=1)
    with pytest.raises(ConfigError):
        ShiftConfig(max_shift=0.0)
