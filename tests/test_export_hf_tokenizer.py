"""Checkpoints as users bring them: a tokenizer.json and no tokenizer.model (transformers 5).

- A llava-hf checkpoint built and saved by transformers' own classes (LlavaConfig,
  LlavaForConditionalGeneration: tiny_models.random_llava_hf; a LlamaTokenizerFast made from
  the project's tiny sentencepiece model with llava-hf's `<image>` / `<pad>`; save_pretrained
  writes no tokenizer.model) is exported by `llara-edge export` and runs a simulator episode with
  `llara-edge run`; so is an original-layout checkpoint with tokenizer.json only whose CLIP
  directory lies elsewhere (`--clip`). Both commands run as subprocesses, so what reaches the
  terminal is seen at the file-descriptor level: llama.cpp's quantiser log is in
  OUT/export.log, not on stdout/stderr; the progress bar and the parity table are.
- The artifact's tokenizer.gguf, read by the runtime's GgufTokenizer, gives transformers' own
  ids (LLaVA's tokenizer_image_token with the HF fast tokenizer) on every prompt and answer:
  the simulator data generator's samples of every task family in every template, the formats'
  prompt families, answers with and without "Step k:", one and two spaces, 49-byte names.
- The real LLaMA-2 vocabulary (tests/real_vocab.py, skipped offline) as transformers 5 and 4.x
  write its tokenizer.json (merges ranked by id / by sentencepiece score).
- Which tokenizer file is read, what is refused, the --clip hint, the quantiser's log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from tiny_models import llara_conversations, random_llava_hf
from transformers import LlamaTokenizerFast

from llara_edge.cli.main import main
from llara_edge.errors import ArtifactError
from llara_edge.formats import TEMPLATES, format_answer, one_image_prompt
from llara_edge.formats.templates import IMAGE_TAG_RE, IMAGE_TOKEN_INDEX
from llara_edge.models.gguf_tokenizer import GgufTokenizer
from llara_export.manifest import load_manifest
from llara_export.models.checkpoint import save_original
from llara_export.models.hf_tokenizer import HfTokenizer
from llara_export.models.llava import TinyConfig, build_tiny
from llara_export.models.tokenizer import SpmTokenizer, tokenizer_from_dir, train_spm
from llara_export.vocab_check import NAMES, _actions, format_texts

LLARA_EDGE = str(Path(sys.executable).with_name("llara-edge"))
FAST = ["--frames", "1", "--frame-size", "64x48", "--max-new-tokens", "6", "--quant", "q8_0",
        "--formats", "gguf,onnx-vision"]
LLAMA_LOG = ("llama_model_loader", "llama_model_quantize", "converting to q8_0")
N_PIECES = 500


def fast_tokenizer(spm_dir: Path, out: Path) -> Path:
    """transformers' LlamaTokenizerFast from a tokenizer.model, with llava-hf's added special
    tokens (<image> = n, <pad> = n + 1), saved by save_pretrained into `out`."""
    from tokenizers import AddedToken

    tok = LlamaTokenizerFast.from_pretrained(spm_dir, add_bos_token=True)
    tok.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    tok.add_special_tokens({"pad_token": "<pad>"})
    tok.save_pretrained(out)
    return out


def llava_ids(hf, prompt: str) -> list[int]:
    """LLaVA's tokenizer_image_token (llava/mm_utils.py) with a transformers tokenizer."""
    chunks = [hf(chunk).input_ids for chunk in IMAGE_TAG_RE.split(prompt)]
    offset = int(bool(chunks[0]) and chunks[0][0] == hf.bos_token_id)
    ids = chunks[0][:offset]
    for i, chunk in enumerate(chunks):
        ids += [IMAGE_TOKEN_INDEX] * bool(i) + chunk[offset:]
    return ids


def corpus(datagen_dir: Path) -> tuple[list[str], list[str]]:
    """(prompts, answers): the simulator data generator's samples of every family in every
    template, the formats' prompt families, and answers in each form the models write."""
    prompts, answers = format_texts()
    for name in ("llara.json", "llarva.json"):
        for rec in json.loads((datagen_dir / name).read_text()):
            user, answer = (turn["value"] for turn in rec["conversations"])
            prompts += [one_image_prompt(t, user) for t in TEMPLATES]
            answers.append(answer)
    acts = _actions()
    answers += [format_answer(acts[:2], first_step=12, first_point_spaces=2),
                format_answer(acts[3:], numbered=False), f"<p>{NAMES[0]}</p>"]
    return prompts, answers


def assert_same_ids(gguf_file: Path, hf, prompts: list[str], answers: list[str]) -> None:
    runtime = GgufTokenizer(gguf_file)
    assert (runtime.bos_id, runtime.eos_id) == (hf.bos_token_id, hf.eos_token_id)
    for prompt in prompts:
        ids = runtime.tokenizer_image_token(prompt)
        assert ids == llava_ids(hf, prompt), prompt
        assert ids[0] == runtime.bos_id and ids.count(IMAGE_TOKEN_INDEX) == 1
    for answer in answers:
        ids = runtime.encode(answer)
        assert ids == hf(answer, add_special_tokens=False).input_ids, answer
        assert runtime.decode(ids) == hf.decode(ids, skip_special_tokens=True) == answer


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spm")
    train_spm(llara_conversations(150), out, vocab_size=N_PIECES)
    return out


@pytest.fixture(scope="module")
def fast_dir(spm_dir, tmp_path_factory) -> Path:
    out = fast_tokenizer(spm_dir, tmp_path_factory.mktemp("fast"))
    assert (out / "tokenizer.json").is_file() and not (out / "tokenizer.model").exists()
    return out


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> tuple[list[str], list[str]]:
    from llara_edge.sim.datagen import DatagenConfig, generate
    from llara_edge.sim.tasks import TASK_FAMILIES

    out = tmp_path_factory.mktemp("datagen") / "data"
    summary = generate(DatagenConfig(episodes=1, width=64, height=48), out)
    assert {k.split("/")[0] for k in summary["episodes"]} == set(TASK_FAMILIES)
    return corpus(out)


def export_cli(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([LLARA_EDGE, "export", str(src), "--out", str(out), *FAST, *extra],
                          capture_output=True, text=True, timeout=900)


def run_cli(artifact: Path, tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")}  # grammar cache
    return subprocess.run([LLARA_EDGE, "run", "--artifact", str(artifact), "--episodes", "1",
                           "--variant", "q8_0", "--no-gif", "--out", str(tmp / "run")],
                          capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def hf_export(fast_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    src = random_llava_hf(fast_dir, root / "ckpt", N_PIECES, 128, 512)
    return src, root / "art", export_cli(src, root / "art")


@pytest.fixture(scope="module")
def original_export(fast_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("orig")
    cfg = TinyConfig(vocab_size=N_PIECES + 2, image_size=56, vision_layers=3, max_positions=512)
    src = save_original(build_tiny(cfg, seed=2), fast_dir, root / "ckpt")
    shutil.move(src / "clip", root / "clip-elsewhere")  # mm_vision_tower "clip" is gone
    return src, root / "art", export_cli(src, root / "art", "--clip", str(root / "clip-elsewhere"))


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("which", ["hf_export", "original_export"])
def test_tokenizer_json_checkpoint_exports_and_runs_in_the_simulator(which, request,
                                                                     tmp_path):
    src, art, proc = request.getfixturevalue(which)
    assert not (src / "tokenizer.model").exists() and (src / "tokenizer.json").is_file()
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = load_manifest(art)
    assert manifest["source"]["layout"] == ("llava-hf" if which == "hf_export" else "original")
    assert {"tokenizer.json", "tokenizer_config.json", "tokenizer.gguf"} <= set(manifest["files"])
    assert "tokenizer.model" not in manifest["files"]
    run = run_cli(art, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["mode"] == "sim" and report["episodes"] == 1
    assert report["limit_violations"] == 0


@pytest.mark.parametrize("which", ["hf_export", "original_export"])
def test_artifact_vocabulary_tokenises_like_the_hf_fast_tokenizer(which, request, texts):
    src, art, proc = request.getfixturevalue(which)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hf = LlamaTokenizerFast.from_pretrained(src)  # transformers' own reading of the checkpoint
    prompts, answers = texts
    assert len(prompts) > 300 and any("Step 12:" in a for a in answers)
    assert any(",  0." in a for a in answers) and any(not a.startswith("Step") for a in answers)
    assert_same_ids(art / "tokenizer.gguf", hf, prompts, answers)


def test_llama_cpp_log_goes_to_the_export_log_not_the_terminal(hf_export):
    _, art, proc = hf_export
    assert proc.returncode == 0, proc.stderr[-3000:]
    terminal = proc.stdout + proc.stderr
    assert not [word for word in LLAMA_LOG if word in terminal], terminal[:2000]
    bar = [line for line in proc.stderr.splitlines() if line.startswith("[export] [")]
    assert bar and "quantising llm-q8_0.gguf" in proc.stderr and "writing manifest.json" in bar[-1]
    assert "variant" in proc.stdout and "q8_0" in proc.stdout  # the parity table
    log = (art / "export.log").read_text()
    assert all(word in log for word in LLAMA_LOG)
    assert log.startswith("== llama_model_quantize llm-f16.gguf -> llm-q8_0.gguf (q8_0) ==")
    assert "export.log" not in load_manifest(art)["files"]  # a report, not part of the artifact


# ----------------------------------------------------------------------------- real vocabulary


@pytest.fixture(scope="module")
def real_spm(tmp_path_factory) -> Path:
    from real_vocab import real_vocab_path

    from llara_export.models.shaped import spm_model_from_gguf

    out = tmp_path_factory.mktemp("real-spm")
    spm_model_from_gguf(real_vocab_path(), out / "tokenizer.model")
    return out


def legacy_tokenizer_json(fast: Path, spm_file: Path, out: Path) -> Path:
    """`fast` rewritten as transformers 4.x wrote LLaMA's tokenizer.json (llava-hf's): Prepend +
    Replace normalisers, no pre-tokeniser, merges ordered by sentencepiece score."""
    import sentencepiece as spm
    from transformers.tokenization_utils_base import generate_merges

    spec = json.loads((fast / "tokenizer.json").read_text())
    sp = spm.SentencePieceProcessor(model_file=str(spm_file))
    scores = {sp.IdToPiece(i): sp.GetScore(i) for i in range(sp.GetPieceSize())}
    spec["model"]["merges"] = [list(m) for m in generate_merges(spec["model"]["vocab"], scores)]
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    spec["pre_tokenizer"] = None
    out.mkdir()
    (out / "tokenizer.json").write_text(json.dumps(spec))
    shutil.copy(fast / "tokenizer_config.json", out)
    return out


def test_real_llama2_vocabulary_as_transformers_5_saves_it(real_spm, tmp_path_factory, texts):
    """A llava-hf checkpoint with LLaMA-2's 32000 pieces (byte fallback), tokenizer.json only:
    the export's tokenizer.gguf gives transformers' ids on every format text, on llama.cpp's
    own tokeniser cases (those without a leading space: there Metaspace writes no extra "▁")
    and on random text; its pieces and types are sentencepiece's."""
    from real_vocab import real_vocab_cases, real_vocab_path

    root = tmp_path_factory.mktemp("real-hf")
    fast = fast_tokenizer(real_spm, root / "fast")
    assert not (fast / "tokenizer.model").exists()
    src = random_llava_hf(fast, root / "ckpt", 32000, 128, 512)
    proc = export_cli(src, root / "art", "--formats", "gguf", "--quant", "")
    assert proc.returncode == 0, proc.stderr[-3000:]
    hf = LlamaTokenizerFast.from_pretrained(src)
    assert len(hf) == 32002 and hf.convert_tokens_to_ids("<image>") == 32000
    prompts, answers = texts
    cases = [text for text, _ in real_vocab_cases() if text and not text[0].isspace()]
    assert_same_ids(root / "art" / "tokenizer.gguf", hf, prompts, answers)
    runtime = GgufTokenizer(root / "art" / "tokenizer.gguf")
    for text in cases + random_texts(300):
        assert runtime.encode(text) == hf(text, add_special_tokens=False).input_ids, repr(text)
    reference = GgufTokenizer(real_vocab_path())  # llama.cpp's own LLaMA-2 vocabulary
    assert runtime.vocab.tokens[:32000] == reference.vocab.tokens
    assert list(runtime.vocab.token_type[:32000]) == list(reference.vocab.token_type)


def test_real_vocabulary_as_transformers_4_wrote_it(real_spm, tmp_path, texts):
    """llava-hf/llava-1.5-7b-hf's tokenizer.json layout (transformers 4.x): the GGUF follows
    it, and then also sentencepiece, leading spaces and runs of spaces included."""
    from real_vocab import real_vocab_cases
    from tokenizers import Tokenizer
    from transformers import LlamaConfig

    from llara_export.gguf_llm import write_vocab_gguf

    legacy = legacy_tokenizer_json(fast_tokenizer(real_spm, tmp_path / "fast"),
                                   real_spm / "tokenizer.model", tmp_path / "legacy")
    tok = tokenizer_from_dir(legacy)
    assert isinstance(tok, HfTokenizer)
    cfg = LlamaConfig(vocab_size=32064, hidden_size=64, intermediate_size=128,
                      num_hidden_layers=1, num_attention_heads=4)
    runtime = GgufTokenizer(write_vocab_gguf(cfg, tok, tmp_path / "tokenizer.gguf"))
    hf = Tokenizer.from_file(str(legacy / "tokenizer.json"))
    spm = SpmTokenizer(real_spm / "tokenizer.model")
    prompts, answers = texts
    cases = [text for text, _ in real_vocab_cases()]
    for text in cases + random_texts(300) + answers + [" lead", "a  b", "x   y    z"]:
        want = hf.encode(text, add_special_tokens=False).ids
        assert runtime.encode(text) == want == spm.encode(text), repr(text)
    for prompt in prompts[::7]:
        assert runtime.tokenizer_image_token(prompt) == tok.tokenizer_image_token(prompt) == \
            spm.tokenizer_image_token(prompt)


def random_texts(n: int) -> list[str]:
    import random

    rng = random.Random(1)
    alphabet = [*"abcxyzABC0123456789 .,:;<>()[]{}-_'\"\n\t", "  ", "é", "中", "🤖", "ß",
                "the ", "Step "]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(n)]
    return [t for t in texts if not t[0].isspace()]


# ----------------------------------------------------------------------------- choice, refusals


def test_tokenizer_model_is_preferred_and_neither_is_a_hinted_error(spm_dir, fast_dir, tmp_path):
    both = tmp_path / "both"
    shutil.copytree(fast_dir, both)
    shutil.copy(spm_dir / "tokenizer.model", both)
    assert isinstance(tokenizer_from_dir(both), SpmTokenizer)
    assert isinstance(tokenizer_from_dir(fast_dir), HfTokenizer)
    with pytest.raises(ArtifactError, match=r"missing tokenizer: neither tokenizer\.model .* "
                                            r"nor tokenizer\.json .*copy the tokenizer files"):
        tokenizer_from_dir(tmp_path)


def test_fast_tokenizer_interface_matches_sentencepiece(spm_dir, fast_dir, texts):
    """The same model in both files: the same ids, decoding, specials and GGUF pieces/types."""
    fast, slow = HfTokenizer.from_dir(fast_dir), SpmTokenizer.from_dir(spm_dir)
    assert (fast.vocab_size, fast.bos_id, fast.eos_id, fast.unk_id, fast.pad_id) == \
        (slow.vocab_size, slow.bos_id, slow.eos_id, slow.unk_id, slow.pad_id) == (N_PIECES, 1, 2,
                                                                                  0, -1)
    prompts, answers = texts
    for prompt in prompts[::5]:
        assert fast.tokenizer_image_token(prompt) == slow.tokenizer_image_token(prompt)
    for answer in answers:
        ids = fast.encode(answer)
        assert ids == slow.encode(answer)
        assert fast.decode([1, *ids, 2, N_PIECES, N_PIECES + 1]) == slow.decode(ids) == answer
    assert [(p, k) for p, _, k in fast.vocab_entries()] == \
        [(p, k) for p, _, k in slow.vocab_entries()]
    assert fast.id_to_piece(5) == slow.id_to_piece(5)


@pytest.mark.parametrize(("change", "words"), [
    (lambda s: s["model"].update(type="Unigram"), "model type 'Unigram'"),
    (lambda s: s["model"].update(byte_fallback=False, ignore_merges=True),
     "no byte_fallback; ignore_merges"),
    (lambda s: s.update(pre_tokenizer={"type": "ByteLevel", "add_prefix_space": False,
                                       "trim_offsets": True, "use_regex": True}),
     "normaliser/pre-tokeniser"),
    (lambda s: s["added_tokens"].append({"id": N_PIECES + 2, "content": "<act>", "lstrip": False,
                                         "rstrip": False, "normalized": False,
                                         "single_word": False, "special": False}),
     "non-special added tokens \\['<act>'\\]"),
])
def test_tokenizers_llama_cpp_cannot_reproduce_are_refused(fast_dir, tmp_path, change, words):
    spec = json.loads((fast_dir / "tokenizer.json").read_text())
    change(spec)
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ArtifactError, match=f"unsupported tokenizer .*{words}"):
        HfTokenizer.from_dir(tmp_path)


def test_missing_clip_directory_names_the_cli_flag(fast_dir, tmp_path, capsys):
    cfg = TinyConfig(vocab_size=N_PIECES + 2, image_size=56, vision_layers=2, max_positions=64)
    src = save_original(build_tiny(cfg, seed=1), fast_dir, tmp_path / "ckpt")
    shutil.rmtree(src / "clip")
    assert main(["export", str(src), "--out", str(tmp_path / "art"), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "missing CLIP directory" in err and "pass --clip DIR" in err
    assert "pass clip_dir=" not in err and not (tmp_path / "art").exists()
