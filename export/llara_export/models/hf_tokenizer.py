"""A checkpoint's Hugging Face fast tokenizer (tokenizer.json) behind SpmTokenizer's interface.

Contract:
    tok = HfTokenizer.from_dir(checkpoint_dir)     # tokenizer.json (+ tokenizer_config.json)
    tok.encode(text) -> list[int]                  # no BOS; the fast tokenizer's own ids
    tok.tokenizer_image_token(prompt) -> list[int] # [BOS] + chunks joined by IMAGE_TOKEN_INDEX
    tok.decode(ids) -> str                         # skip_special_tokens=True semantics
    tok.bos_id, eos_id, unk_id, pad_id, vocab_size, model_file (the tokenizer.json)
    tok.vocab_entries() -> [(piece, score, gguf token type)]   # the GGUF vocabulary
    tok.piece_bytes(), tok.id_to_piece(i), tok.save(directory)
    clean_up_spaces(text)   # shared with tokenizer.SpmTokenizer
    (prompt ids: llara_edge.formats.templates.image_token_ids, the runtime's own)

transformers 5's `save_pretrained` writes a LLaMA tokenizer as tokenizer.json only (no
tokenizer.model). Accepted is what llama.cpp's LLaMA (SPM) tokenizer reproduces: a BPE model
with byte fallback (no ignore_merges, dropout or subword prefix/suffix) whose normaliser and
pre-tokeniser write the text as one piece with spaces as "▁" and one "▁" in front
(transformers 4.x: Prepend + Replace normalisers; 5.x: a Metaspace pre-tokeniser). Llama 3's
byte-level BPE, a Unigram model or non-special added tokens (split from the raw text before
BPE, which the GGUF vocabulary would not do) are refused with an ArtifactError.

The GGUF vocabulary (`vocab_entries`, written by gguf_llm): the model's pieces by id. Scores:
llama.cpp merges the adjacent pair whose concatenation scores highest, HF's BPE the pair of
lowest merge rank, so a piece scores minus the rank of the first merge that makes it (every
split of one piece is listed together in converted LLaMA merges, transformers 4.x and 5.x
alike); pieces no merge makes score below all of them. (gguf-py's LlamaHfVocab writes -1000
for every piece, a placeholder under which llama.cpp would merge left to right.) Types:
"<0xAB>" BYTE, the unk token UNKNOWN, special added tokens CONTROL, the rest NORMAL (the
types sentencepiece gives LLaMA's pieces). Added tokens past the model's vocabulary
(llava-hf's special `<image>`, `<pad>`) are outside `vocab_size`, as they are outside a
sentencepiece model: gguf_llm pads their rows, `decode` drops them.

Known difference: a Metaspace pre-tokeniser puts no "▁" in front of text that already starts
with a space, sentencepiece and llama.cpp do; no prompt chunk or answer the formats write
starts with a space (the export checks its formats' texts: llara_export.vocab_check).

BOS is always put first by `tokenizer_image_token` (LLaVA's prompts start with it whatever
the saved tokenizer's add_bos_token says). `tokenizers` (the export's dependency) is imported
only when a tokenizer is loaded; the runtime never imports this module.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from llara_edge.errors import ArtifactError
from llara_edge.formats.templates import image_token_ids
from llara_edge.models.gguf_vocab import BYTE, CONTROL, NORMAL, SPACE, UNKNOWN

JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")
_PROBE = ("a  b\nc", f"{SPACE}a{SPACE}{SPACE}b\nc")  # text -> its one pre-tokenised piece
_DEFAULTS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None}
# transformers PreTrainedTokenizerBase.clean_up_tokenization
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
             (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up_spaces(text: str) -> str:
    """transformers' clean_up_tokenization (a config's clean_up_tokenization_spaces)."""
    for old, new in _CLEAN_UP:
        text = text.replace(old, new)
    return text




def read_json_object(path: Path, what: str) -> dict:
    """The JSON object in `path` (ArtifactError naming `what` when missing, unreadable or not
    an object): checkpoint configs and tokenizer files alike."""
    if not path.is_file():
        raise ArtifactError(f"missing {what}: {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ArtifactError(f"unreadable {what} {path}: {err}") from err
    if not isinstance(data, dict):
        raise ArtifactError(f"{what} {path} is not a JSON object")
    return data


def _model_problems(model: dict) -> list[str]:
    """Why a tokenizer.json model is not LLaMA's sentencepiece-style BPE (empty: it is)."""
    problems = []
    if model.get("type") != "BPE":
        problems.append(f"model type {model.get('type')!r} (LLaMA's is BPE)")
    if not model.get("byte_fallback"):
        problems.append("no byte_fallback")
    if model.get("ignore_merges"):
        problems.append("ignore_merges (Llama 3's byte-level BPE)")
    if model.get("dropout"):
        problems.append(f"BPE dropout {model['dropout']}")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        problems.append("a subword prefix/suffix")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or sorted(vocab.values()) != list(range(len(vocab))):
        problems.append("model.vocab is not a piece -> id map over 0..n-1")
    return problems


def _added_problems(added: list[dict]) -> list[str]:
    plain = [t.get("content") for t in added if not t.get("special")]
    if not plain:
        return []
    return [f"non-special added tokens {plain[:5]} (matched in the raw text before BPE, which "
            "llama.cpp's LLaMA vocabulary does not do)"]


def _pretokenized(tk, text: str) -> list[str]:
    """The pieces BPE sees: the normaliser, then the pre-tokeniser."""
    if tk.normalizer is not None:
        text = tk.normalizer.normalize_str(text)
    if tk.pre_tokenizer is None:
        return [text]
    return [piece for piece, _ in tk.pre_tokenizer.pre_tokenize_str(text)]


def _merge_ranks(model: dict) -> dict[str, int]:
    """piece -> rank of the first merge that makes it (merges as "a b" or ["a", "b"])."""
    ranks: dict[str, int] = {}
    for rank, merge in enumerate(model.get("merges") or []):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        ranks.setdefault(left + right, rank)
    return ranks


def _special_texts(directory: Path) -> dict[str, str | None]:
    """bos/eos/unk/pad token texts: tokenizer_config.json, else special_tokens_map.json."""
    found: dict[str, str | None] = {}
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (directory / name).is_file():
            cfg = read_json_object(directory / name, "tokenizer config")
            for key in _DEFAULTS:
                value = cfg.get(key)
                value = value.get("content") if isinstance(value, dict) else value
                if key not in found and isinstance(value, str):
                    found[key] = value
    return {key: found.get(key, default) for key, default in _DEFAULTS.items()}


class HfTokenizer:
    """A LLaMA-style fast tokenizer (module docstring)."""

    def __init__(self, json_file: str | Path, clean_up_tokenization_spaces: bool = False,
                 specials: dict[str, str | None] | None = None):
        self.model_file = Path(json_file)
        if not self.model_file.is_file():
            raise ArtifactError(f"tokenizer file not found: {self.model_file}")
        spec = read_json_object(self.model_file, "tokenizer")
        model, added = spec.get("model") or {}, spec.get("added_tokens") or []
        self._refuse(_model_problems(model) + _added_problems(added))
        from tokenizers import Tokenizer

        try:
            self.tk = Tokenizer.from_file(str(self.model_file))
        except Exception as err:  # tokenizers raises plain Exception on a bad spec
            raise ArtifactError(f"unreadable tokenizer {self.model_file}: {err}") from err
        pieces = _pretokenized(self.tk, _PROBE[0])
        if pieces != [_PROBE[1]]:
            self._refuse([f"its normaliser/pre-tokeniser writes {_PROBE[0]!r} as {pieces!r}, "
                          f"LLaMA's sentencepiece as {[_PROBE[1]]!r}"])
        self.clean_up = clean_up_tokenization_spaces
        self._vocab: dict[str, int] = model["vocab"]
        self._pieces = sorted(self._vocab, key=self._vocab.__getitem__)
        self._ranks = _merge_ranks(model)
        self._added = {int(t["id"]) for t in added if t.get("special")}
        self._set_specials({**_DEFAULTS, **(specials or {})})

    def _refuse(self, problems: list[str]) -> None:
        if problems:
            raise ArtifactError(f"unsupported tokenizer {self.model_file}: " + "; ".join(problems)
                                + " (the export reads LLaMA/Vicuna sentencepiece-style "
                                "tokenizers)")

    def _set_specials(self, texts: dict[str, str | None]) -> None:
        def piece_id(key: str) -> int:
            text = texts[key]
            token_id = self.tk.token_to_id(text) if text else None
            return token_id if token_id is not None and token_id < self.vocab_size else -1

        self.bos_id, self.eos_id = piece_id("bos_token"), piece_id("eos_token")
        self.unk_id, pad = piece_id("unk_token"), piece_id("pad_token")
        if self.bos_id < 0 or self.eos_id < 0:
            raise ArtifactError(f"tokenizer {self.model_file}: BOS {texts['bos_token']!r} / "
                                f"EOS {texts['eos_token']!r} are not pieces of its vocabulary")
        # a pad of its own, as sentencepiece reports one; LLaVA pads with <unk>, llava-hf's
        # <pad> is an added token past the vocabulary: none then
        self.pad_id = pad if pad not in (self.bos_id, self.eos_id, self.unk_id) else -1
        self._special = {i for i in (self.bos_id, self.eos_id, self.unk_id, self.pad_id)
                         if i >= 0} | {i for i in self._added if i < self.vocab_size}

    @classmethod
    def from_dir(cls, directory: str | Path) -> HfTokenizer:
        """Tokenizer of a checkpoint directory (tokenizer.json, optional tokenizer_config.json
        / special_tokens_map.json for the special tokens and clean_up_tokenization_spaces)."""
        directory = Path(directory)
        clean_up = False
        if (directory / "tokenizer_config.json").is_file():
            cfg = read_json_object(directory / "tokenizer_config.json", "tokenizer config")
            clean_up = bool(cfg.get("clean_up_tokenization_spaces"))
        return cls(directory / "tokenizer.json", clean_up, _special_texts(directory))

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no BOS/EOS)."""
        return list(self.tk.encode(text, add_special_tokens=False).ids) if text else []

    def tokenizer_image_token(self, prompt: str, add_bos: bool = True) -> list[int]:
        """LLaVA's tokenizer_image_token: [BOS] chunk0 -200 chunk1 -200 ... chunkN."""
        return image_token_ids(self.encode, prompt, self.bos_id if add_bos else None)

    def decode(self, ids: list[int]) -> str:
        """Text of `ids` with special and out-of-vocabulary (added) tokens skipped."""
        n = self.vocab_size
        keep = [int(i) for i in ids if 0 <= int(i) < n and int(i) not in self._special]
        text = self.tk.decode(keep, skip_special_tokens=False)
        return clean_up_spaces(text) if self.clean_up else text

    def id_to_piece(self, token_id: int) -> str:
        return self._pieces[int(token_id)]

    def vocab_entries(self) -> list[tuple[str, float, int]]:
        """(piece, score, gguf token type) per id of the vocabulary (module docstring)."""
        last = len(self._ranks)
        entries = []
        for i, piece in enumerate(self._pieces):
            rank = self._ranks.get(piece)
            score = -float(rank) if rank is not None else -float(last + i)
            kind = (BYTE if _BYTE_PIECE.fullmatch(piece) else UNKNOWN if i == self.unk_id
                    else CONTROL if i in self._special else NORMAL)
            entries.append((piece, score, kind))
        return entries

    def piece_bytes(self) -> tuple[bytes | None, ...]:
        """Per id the bytes it spells; None for special pieces (decoding.TokenVocab)."""
        return tuple(None if kind in (UNKNOWN, CONTROL)
                     else bytes([int(piece[3:5], 16)]) if kind == BYTE
                     else piece.replace(SPACE, " ").encode("utf-8")
                     for piece, _, kind in self.vocab_entries())

    def save(self, directory: str | Path) -> None:
        """Copy tokenizer.json and its sibling config files (when present) into `directory`."""
        directory = Path(directory)
        for name in JSON_FILES:
            src = self.model_file.parent / name if name != JSON_FILES[0] else self.model_file
            if src.is_file():
                shutil.copyfile(src, directory / name)
