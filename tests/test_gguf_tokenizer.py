"""GgufTokenizer: the GGUF's own vocabulary, llama.cpp's ids, and the plain SPM reference.

On the real LLaMA-2 vocabulary (tests/real_vocab.py, skipped offline): both engines give
llama.cpp's .out ids on its 46 .inp cases, and agree on every prompt and answer the formats
write and on random text; the metadata reader agrees with the gguf package; bad files raise
ArtifactError. On the tiny export: an artifact whose manifest lists no tokenizer.model gets
the GGUF's tokenizer, with the ids sentencepiece gives.
"""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from real_vocab import real_vocab_cases, real_vocab_path

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ArtifactError
from llara_edge.formats import ACTION_PROMPTS, DETECTION_PROMPTS, LOCALIZATION_PROMPTS, LlaraPrompt
from llara_edge.formats.llara import (
    detection_answer,
    detection_prompt,
    format_answer,
    localization_answer,
    localization_prompt,
)
from llara_edge.formats.llarva import PROMPTS, LlarvaPrompt, ProprioHistory, format_llarva_answer
from llara_edge.formats.templates import (
    IMAGE_TAG_RE,
    IMAGE_TOKEN_INDEX,
    TEMPLATES,
    build_prompt,
    one_image_prompt,
)
from llara_edge.models.gguf_tokenizer import GgufTokenizer
from llara_edge.models.gguf_vocab import read_gguf_metadata, read_gguf_vocab


@pytest.fixture(scope="module")
def toks():
    path = real_vocab_path()
    return GgufTokenizer(path), GgufTokenizer(path, engine="python")


def format_corpus() -> list[str]:
    """User prompts and answers of every format, and whole conversations with them."""
    rng = random.Random(0)
    names = ("red block", "green pan", "blue heart-shaped bowl", "letter A")
    acts = [PickPlaceAction(pick=(rng.random(), rng.random()), place=(rng.random(), 0.5),
                            rotation_deg=rng.randint(-359, 359), tool=tool, object_name=name)
            for tool in ("suction", "spatula") for name in (*names, None)]
    boxes = {n: (round(rng.random(), 3), 0.5, 0.125, 0.25) for n in names}
    users, answers = [], []
    for tool in ("suction", "spatula"):
        for para in (None, *range(len(ACTION_PROMPTS))):
            p = LlaraPrompt(instruction="Put the red block into the green pan.",
                            objects={"red block": boxes["red block"],
                                     "green pan": boxes["green pan"]},
                            paraphrase=para, tool=tool)
            users.append(p.render(acts[:2] if para else ()))
    users += [detection_prompt(i) for i in range(len(DETECTION_PROMPTS))]
    users += [localization_prompt(names[i % 4], i) for i in range(len(LOCALIZATION_PROMPTS))]
    history = ProprioHistory(7)
    history.push([0.1234, -1.5, 0.0, 2.0, -0.0001, 3.1416, 0.5])
    users += [LlarvaPrompt(task="open the drawer", variant=v).render(history) for v in PROMPTS]
    for spaces in (1, 2):
        answers += [format_answer([a], first_step=k, first_point_spaces=spaces)
                    for k, a in enumerate(acts, 1)]
    answers += [format_answer(acts[:3], numbered=False), detection_answer(boxes),
                localization_answer("red block", boxes["red block"])]
    answers += [format_llarva_answer(JointStepAction(joints=(0.5, -1.0123, 0.0, 1.0, 2.25, -0.0,
                                                             0.1), gripper=g, trace=tr), 7)
                for g, tr in ((1.0, None), (0.0, ((12, 300), (0, 999))))]
    convs = [build_prompt(t, u, a) for t in TEMPLATES for u, a in zip(users, answers, strict=False)]
    convs += [one_image_prompt(t, u) for t in TEMPLATES for u in users]
    return users + answers + convs


def test_llama_cpp_cases(toks):
    """llama.cpp's own tokeniser cases (test-tokenizer-0): both engines, every case."""
    cases = real_vocab_cases()
    assert len(cases) == 46
    for tok in toks:
        wrong = [(text, tok.encode(text), ids) for text, ids in cases if tok.encode(text) != ids]
        assert not wrong, (tok.engine_name, wrong[:3])


def test_format_prompts_agree(toks):
    """Every prompt/answer/conversation the formats write: llama.cpp == the SPM reference,
    with image tags cut out as the runtime does."""
    fast, ref = toks
    corpus = format_corpus()
    assert len(corpus) > 100
    for text in corpus:
        ids = fast.tokenizer_image_token(text)
        assert ids == ref.tokenizer_image_token(text), text
        assert ids.count(IMAGE_TOKEN_INDEX) == text.count("<image>")
        for chunk in IMAGE_TAG_RE.split(text):  # decode undoes encode (prefix space removed)
            assert fast.decode(fast.encode(chunk)) == chunk


def test_real_pieces_of_answers(toks):
    """The facts the grammar relies on: digits are single tokens after a lone "▁", and
    words take their leading space ("▁at", "▁rotate")."""
    fast, _ = toks
    ids = fast.encode("Step 12: Pick up the <p>red block</p> at <b>(0.312,")
    pieces = [fast.id_to_piece(i) for i in ids]
    assert pieces[:4] == ["▁Step", "▁", "1", "2"]
    assert "▁at" in pieces and all(len(p) == 1 for p in pieces if p.isdigit())


def test_random_text_agrees(toks):
    """Random strings over ASCII, spaces, newlines, digits and multi-byte characters."""
    fast, ref = toks
    rng = random.Random(1)
    alphabet = [*"abcxyzABC0123456789 .,:;<>()[]{}-_'\"\n\t", "  ", "é", "中", "🤖", "ß"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert fast.encode(text) == ref.encode(text), repr(text)


def test_decode_and_specials(toks):
    fast, _ = toks
    assert (fast.bos_id, fast.eos_id, fast.unk_id, fast.vocab_size) == (1, 2, 0, 32000)
    ids = fast.encode("Hello world\n  x 🤖")
    assert fast.decode([fast.bos_id, *ids, fast.eos_id, 0, 32000, IMAGE_TOKEN_INDEX]) == \
        "Hello world\n  x 🤖"
    assert fast.encode("") == [] and fast.decode([]) == ""
    pieces = fast.piece_bytes()
    assert pieces[1] is None and pieces[2] is None and pieces[0] is None
    assert pieces[13] == b"\n" and pieces[fast.encode("at")[0]] == b" at"


def test_metadata_matches_gguf_package(toks):
    gguf = pytest.importorskip("gguf", reason="the gguf package (export extra) is not installed")
    path = real_vocab_path()
    reader = gguf.GGUFReader(str(path))
    vocab = read_gguf_vocab(path)
    assert list(vocab.tokens) == list(reader.fields["tokenizer.ggml.tokens"].contents())
    np.testing.assert_array_equal(vocab.scores,
                                  reader.fields["tokenizer.ggml.scores"].contents())
    np.testing.assert_array_equal(vocab.token_type,
                                  reader.fields["tokenizer.ggml.token_type"].contents())
    meta = read_gguf_metadata(path)
    assert meta["llama.embedding_length"] == 4096 and meta["tokenizer.ggml.add_bos_token"]


def test_bad_files(tmp_path):
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf at all")
    truncated = tmp_path / "t.gguf"
    truncated.write_bytes(real_vocab_path().read_bytes()[:100_000])
    for bad, words in ((not_gguf, "bad magic"), (truncated, "truncated"),
                       (tmp_path / "missing.gguf", "not found")):
        for engine in ("llama.cpp", "python"):
            with pytest.raises(ArtifactError, match=words):
                GgufTokenizer(bad, engine=engine)
    with pytest.raises(ArtifactError, match="unknown tokenizer engine"):
        GgufTokenizer(real_vocab_path(), engine="hf")


def test_gguf_without_vocabulary(tmp_path):
    gguf = pytest.importorskip("gguf", reason="the gguf package (export extra) is not installed")
    path = tmp_path / "novocab.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ArtifactError, match="no tokenizer vocabulary"):
        GgufTokenizer(path)


def test_artifact_without_tokenizer_model(tmp_path_factory):
    """An export whose manifest lists no tokenizer.model: the runtime takes the GGUF's
    vocabulary, and its ids equal sentencepiece's on the policy's prompts."""
    from runtime_artifact import shared_artifact

    from llara_edge.runtime.artifact import Artifact
    from llara_export.models.tokenizer import SpmTokenizer

    src = shared_artifact(tmp_path_factory)
    root = tmp_path_factory.mktemp("gguf-only") / "art"
    shutil.copytree(src, root)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.pop("tokenizer", None)
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        manifest["files"].pop(name, None)
        (root / name).unlink(missing_ok=True)
    manifest_path.write_text(json.dumps(manifest))
    tok = Artifact.open(root).tokenizer()
    assert isinstance(tok, GgufTokenizer)
    spm = SpmTokenizer.from_dir(src)
    assert tok.vocab_size == spm.vocab_size
    for text in format_corpus()[:60]:
        assert tok.tokenizer_image_token(text) == spm.tokenizer_image_token(text), text
        ids = spm.encode(text.replace("<image>", ""))
        assert tok.decode(ids) == spm.decode(ids)
