"""A LLaMA-style sentencepiece tokenizer trained on the project's own text, and LLaVA encoding.

Contract:

    tok = train_tokenizer(texts, out_dir, TokenizerConfig(vocab_size=1024))
        -> llara_export.models.tokenizer.SpmTokenizer; writes out_dir/tokenizer.model plus the
           transformers files (tokenizer_config.json, special_tokens_map.json) so that
           `LlamaTokenizer.from_pretrained(out_dir)` loads the same vocabulary
    corpus_texts(records) -> list[str]: every prompt / answer of datagen records plus the fixed
           format strings (paraphrase lists, format prompts, conversation system texts, the
           catalogue's object and container names)
    encode_multimodal(tok, text) -> list[int]: LLaVA's `tokenizer_image_token` on a full
           conversation string (SpmTokenizer.tokenizer_image_token: <s>, one
           IMAGE_TOKEN_INDEX (-200) per image tag, each text chunk encoded on its own) with
           every literal "</s>" turned into the eos id, as LLaVA's HF tokenizer does

Vocabulary layout as LLaMA (models.tokenizer.LLAMA_SPM_SETTINGS): <unk> = 0, <s> = 1,
</s> = 2, BPE, digits split into single tokens, unknown characters as byte pieces, no
normalisation and no whitespace folding (the two spaces of released LLaRA answers survive a
round trip). Sentences are the lines of the texts, so "\n" is never a piece and encodes as
the byte <0x0A>, as in LLaMA. Training is deterministic for a given corpus (one thread, no
sentence sampling).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llara_edge.errors import ConfigError
from llara_edge.formats import (
    ACTION_PROMPTS,
    DETECTION_PROMPTS,
    FORMAT_PROMPTS,
    LOCALIZATION_PROMPTS,
    TEMPLATES,
)
from llara_edge.sim.catalog import COLOUR_NAMES, CONTAINER_NAMES, SHAPE_NAMES
from llara_export.models.tokenizer import SpmTokenizer, train_spm

EOS_TEXT = "</s>"


@dataclass(frozen=True)
class TokenizerConfig:
    """sentencepiece trainer settings that matter; the rest follow LLaMA's tokenizer."""

    vocab_size: int = 1024
    model_type: str = "bpe"  # LLaMA: bpe

    def __post_init__(self) -> None:
        if not 300 <= self.vocab_size <= 32000:
            raise ConfigError(f"vocab_size must be in 300..32000, got {self.vocab_size}")
        if self.model_type not in ("bpe", "unigram"):
            raise ConfigError(f"model_type must be bpe or unigram, got {self.model_type!r}")


def fixed_texts() -> list[str]:
    """The format strings every prompt is built from (so they are cheap to tokenise)."""
    systems = [t.system for t in TEMPLATES.values()]
    roles = [f"{a}: {b}:" for t in TEMPLATES.values() for a, b in [t.roles]]
    names = [f"{c} {k}" for c in COLOUR_NAMES for k in (*SHAPE_NAMES, *CONTAINER_NAMES)]
    return [*ACTION_PROMPTS, *DETECTION_PROMPTS, *LOCALIZATION_PROMPTS,
            *FORMAT_PROMPTS.values(), *systems, *roles, *names]


def corpus_texts(records: Iterable[dict]) -> list[str]:
    """Prompts and answers of LLaVA conversation records, then the fixed format strings."""
    texts = [turn["value"] for rec in records for turn in rec["conversations"]]
    return texts + fixed_texts()


def _sentences(texts: Iterable[str]) -> list[str]:
    # sentencepiece reads one sentence per line: newlines never enter the vocabulary and
    # are encoded as the byte piece <0x0A>, as in LLaMA.
    return [line for text in texts for line in text.split("\n") if line.strip()]


def train_tokenizer(texts: Sequence[str], out_dir: str | Path,
                    cfg: TokenizerConfig | None = None) -> SpmTokenizer:
    """Train on `texts`, write the model and the transformers files into `out_dir`."""
    cfg = cfg or TokenizerConfig()
    sentences = _sentences(texts)
    if not sentences:
        raise ConfigError("the tokenizer corpus is empty")
    out = Path(out_dir)
    # LLaMA's trainer settings (models.tokenizer) plus what makes the run deterministic.
    tok = train_spm(sentences, out, cfg.vocab_size, model_type=cfg.model_type,
                    num_threads=1, input_sentence_size=0, shuffle_input_sentence=False)
    write_hf_files(out)
    return tok


def write_hf_files(out_dir: Path) -> None:
    """tokenizer_config.json / special_tokens_map.json as a LLaMA checkpoint ships them."""
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    config = {**special, "tokenizer_class": "LlamaTokenizer", "add_bos_token": True,
              "add_eos_token": False, "legacy": True, "clean_up_tokenization_spaces": False,
              "model_max_length": 2048, "pad_token": None, "padding_side": "right"}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=1) + "\n")
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n")


def load_tokenizer(directory: str | Path) -> SpmTokenizer:
    """The tokenizer of a directory holding tokenizer.model (a checkpoint or a training run)."""
    return SpmTokenizer.from_dir(directory)


def encode_multimodal(tok: SpmTokenizer, text: str) -> list[int]:
    """LLaVA's tokenizer_image_token on `text`, each literal "</s>" turned into the eos id.

    LLaVA's HF LlamaTokenizer treats "</s>" in text as the special token; the text between
    two of them is encoded as one more chunk (dummy prefix included, no BOS).
    """
    ids: list[int] = []
    for i, part in enumerate(text.split(EOS_TEXT)):
        if i:
            ids.append(tok.eos_id)
        if part or not i:
            ids.extend(tok.tokenizer_image_token(part, add_bos=not i))
    return ids
