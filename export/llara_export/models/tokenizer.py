"""LLaMA sentencepiece tokenizer with LLaVA's image-token handling; a checkpoint's tokenizer.

Contract:
    tok = tokenizer_from_dir(checkpoint_dir)           # SpmTokenizer or hf_tokenizer.HfTokenizer
    tok = SpmTokenizer.from_dir(checkpoint_dir)        # tokenizer.model (+ tokenizer_config.json)
    tok.encode(text) -> list[int]                      # no BOS; sentencepiece with its dummy prefix
    tok.tokenizer_image_token(prompt) -> list[int]     # [BOS] + chunks joined by IMAGE_TOKEN_INDEX
    tok.decode(ids) -> str                             # skip_special_tokens=True semantics
    tok.vocab_entries() -> [(piece, score, gguf token type)]   # the GGUF vocabulary

`tokenizer_from_dir` reads tokenizer.model (SpmTokenizer) when the checkpoint has one, else
tokenizer.json (models/hf_tokenizer.py HfTokenizer, the same interface; transformers 5's
save_pretrained writes only that). tokenizer.model comes first: LLaVA/LLaRA train and evaluate
with the slow sentencepiece tokenizer (use_fast=False), so it is the tokenizer the weights
saw, with sentencepiece's own scores (llama.cpp's convert_hf_to_gguf prefers it too), while a
tokenizer.json that transformers 5 converted from LLaMA's tokenizer.model tokenises runs of
spaces differently (its merges rank "▁▁" first, sentencepiece scores it last: "a  b" is
▁a ▁▁ b there, ▁a ▁ ▁b in sentencepiece).
`encode` equals what LLaVA's slow LlamaTokenizer gives for text without special-token
strings (legacy or not: both add one "▁" in front of each separately tokenised chunk).
`tokenizer_image_token` reproduces LLaVA's `tokenizer_image_token` (each chunk tokenised on
its own with BOS, later BOS dropped) with LLaRA's tag pattern `<image\\d*?>`; every tag becomes
one IMAGE_TOKEN_INDEX (-200) and the images are consumed in tag order.
`decode` drops BOS/EOS/UNK/PAD and ids outside the sentencepiece vocabulary (llava-hf's added
`<image>` / `<pad>`), as `batch_decode(..., skip_special_tokens=True)`; when the checkpoint's
tokenizer_config.json sets `clean_up_tokenization_spaces`, HF's clean-up is applied too.

sentencepiece (the export extra) is imported only where a model is loaded or trained, so this
module imports on a robot, which reads the vocabulary from the GGUF instead (gguf_tokenizer).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from llara_edge.errors import ArtifactError
from llara_edge.formats.templates import image_token_ids
from llara_export.models.hf_tokenizer import (
    JSON_FILES,
    HfTokenizer,
    clean_up_spaces,
)

TOKENIZER_FILES = ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json")


def tokenizer_from_dir(directory: str | Path) -> ExportTokenizer:
    """The tokenizer of a checkpoint directory: tokenizer.model first, else tokenizer.json
    (module docstring); an ArtifactError saying what to copy in when it has neither."""
    directory = Path(directory)
    if (directory / TOKENIZER_FILES[0]).is_file():
        return SpmTokenizer.from_dir(directory)
    if (directory / JSON_FILES[0]).is_file():
        return HfTokenizer.from_dir(directory)
    raise ArtifactError(
        f"missing tokenizer: neither tokenizer.model (sentencepiece) nor tokenizer.json (a fast "
        f"tokenizer) in {directory}; copy the tokenizer files of the model it was finetuned "
        "from (e.g. lmsys/vicuna-7b-v1.5 or llava-hf/llava-1.5-7b-hf) into it")


class SpmTokenizer:
    """A LLaMA-style sentencepiece model (<unk>=0, <s>=1, </s>=2 in LLaMA; read from the model)."""

    def __init__(self, model_file: str | Path, clean_up_tokenization_spaces: bool = False):
        self.model_file = Path(model_file)
        if not self.model_file.is_file():
            raise ArtifactError(f"tokenizer model not found: {self.model_file}")
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(self.model_file))
        except (OSError, RuntimeError) as err:
            raise ArtifactError(f"unreadable sentencepiece model {self.model_file}: {err}") from err
        self.clean_up = clean_up_tokenization_spaces
        self.bos_id = self.sp.bos_id()
        self.eos_id = self.sp.eos_id()
        self.unk_id = self.sp.unk_id()
        self.pad_id = self.sp.pad_id()  # -1 when the model has none
        self._special = {i for i in (self.bos_id, self.eos_id, self.unk_id, self.pad_id) if i >= 0}

    @classmethod
    def from_dir(cls, directory: str | Path) -> SpmTokenizer:
        """Tokenizer of a checkpoint directory (tokenizer.model, optional tokenizer_config.json)."""
        directory = Path(directory)
        model_file = directory / "tokenizer.model"
        if not model_file.is_file():
            raise ArtifactError(f"missing tokenizer: no tokenizer.model in {directory}")
        clean_up = False
        cfg_file = directory / "tokenizer_config.json"
        if cfg_file.is_file():
            try:
                tok_cfg = json.loads(cfg_file.read_text())
                clean_up = bool(tok_cfg.get("clean_up_tokenization_spaces"))
            except ValueError as err:
                raise ArtifactError(f"unreadable tokenizer config {cfg_file}: {err}") from err
        return cls(model_file, clean_up)

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no BOS/EOS)."""
        return list(self.sp.EncodeAsIds(text)) if text else []

    def tokenizer_image_token(self, prompt: str, add_bos: bool = True) -> list[int]:
        """LLaVA's tokenizer_image_token: [BOS] chunk0 -200 chunk1 -200 ... chunkN."""
        return image_token_ids(self.encode, prompt, self.bos_id if add_bos else None)

    def decode(self, ids: list[int]) -> str:
        """Text of `ids` with special and out-of-vocabulary (added) tokens skipped."""
        n = self.vocab_size
        keep = [int(i) for i in ids if 0 <= int(i) < n and int(i) not in self._special]
        text = self.sp.DecodeIds(keep)
        return clean_up_spaces(text) if self.clean_up else text

    def id_to_piece(self, token_id: int) -> str:
        return self.sp.IdToPiece(int(token_id))

    def vocab_entries(self) -> list[tuple[str, float, int]]:
        """(piece, score, gguf token type) per id: sentencepiece's pieces and scores, its
        unknown/control/unused/byte pieces typed so, the rest (user-defined too) NORMAL (as
        convert_hf_to_gguf's _create_vocab_sentencepiece)."""
        import gguf

        sp = self.sp
        kinds = (
            (sp.IsUnknown, gguf.TokenType.UNKNOWN), (sp.IsControl, gguf.TokenType.CONTROL),
            (sp.IsUnused, gguf.TokenType.UNUSED), (sp.IsByte, gguf.TokenType.BYTE),
        )
        return [(sp.IdToPiece(i), float(sp.GetScore(i)),
                 int(next((t for test, t in kinds if test(i)), gguf.TokenType.NORMAL)))
                for i in range(self.vocab_size)]

    def save(self, directory: str | Path) -> None:
        """Copy tokenizer.model and its sibling config files (when present) into `directory`."""
        directory = Path(directory)
        shutil.copyfile(self.model_file, directory / "tokenizer.model")
        for name in TOKENIZER_FILES[1:]:
            src = self.model_file.parent / name
            if src.is_file():
                shutil.copyfile(src, directory / name)


ExportTokenizer = SpmTokenizer | HfTokenizer  # what the export reads a checkpoint's text with

# LLaMA's sentencepiece trainer settings (normalizer_spec / trainer_spec of its tokenizer.model).
LLAMA_SPM_SETTINGS: dict[str, object] = {
    "model_type": "bpe",
    "split_digits": True,
    "byte_fallback": True,
    "unk_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": -1,
    "add_dummy_prefix": True,
    "remove_extra_whitespaces": False,
    "normalization_rule_name": "identity",
    "allow_whitespace_only_pieces": True,
    "split_by_unicode_script": True,
    "character_coverage": 1.0,
    "hard_vocab_limit": False,
}


def train_spm(
    texts: list[str], out_dir: str | Path, vocab_size: int = 600, **overrides: object
) -> SpmTokenizer:
    """Train a small LLaMA-style sentencepiece model into out_dir/tokenizer.model."""
    import sentencepiece as spm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {**LLAMA_SPM_SETTINGS, **overrides}
    spm.SentencePieceTrainer.Train(
        sentence_iterator=iter(texts),
        model_prefix=str(out / "tokenizer"),
        vocab_size=vocab_size,
        minloglevel=2,
        **settings,
    )
    (out / "tokenizer.vocab").unlink(missing_ok=True)
    return SpmTokenizer(out / "tokenizer.model")
