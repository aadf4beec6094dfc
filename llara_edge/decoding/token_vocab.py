"""A tokenizer's vocabulary seen as byte strings, and its canonical encoding of byte text.

Contract:
    vocab = TokenVocab.from_tokenizer(tok)      # SpmTokenizer or GgufTokenizer (models)
    vocab.token_bytes[i] -> bytes | None        # what piece i spells; None: never allowed
                                                # (BOS, UNK, control and unused pieces; EOS)
    vocab.eos_id, vocab.size
    vocab.canonical(text: bytes) -> list[int] | None
        the ids the tokenizer gives for `text` as part of an answer, i.e. of a stream that
        starts with the space that precedes it in the conversation; None when `text` is not
        valid UTF-8 (a cut through a multi-byte character)
    vocab.matrix() -> (uint8 (V, Lmax) bytes, int32 (V,) lengths): padded byte table

Pieces map to bytes as sentencepiece decodes them: "▁" is a space, byte-fallback pieces
"<0xAB>" are that one byte. With sentencepiece's dummy prefix, the stream " Step 1" is
canonically encode("Step 1") (the prefix supplies the first "▁"); without it, encode(text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from llara_edge.errors import ConfigError

SPACE_PIECE = "▁"


@dataclass(frozen=True)
class TokenVocab:
    token_bytes: tuple[bytes | None, ...]
    eos_id: int
    encode: Callable[[str], list[int]]  # tokenizer encode without BOS/EOS
    dummy_prefix: bool
    _matrix: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.eos_id < len(self.token_bytes):
            raise ConfigError(f"eos id {self.eos_id} outside the vocabulary")

    @property
    def size(self) -> int:
        return len(self.token_bytes)

    @classmethod
    def from_tokenizer(cls, tok: object) -> TokenVocab:
        """From an SpmTokenizer (`.sp` SentencePieceProcessor, eos_id, encode) or a tokenizer
        that lists its pieces' bytes itself (`piece_bytes()`, e.g. models.GgufTokenizer)."""
        sp = getattr(tok, "sp", None)
        if sp is not None:
            table = tuple(_piece_bytes(sp, i) for i in range(sp.GetPieceSize()))
        elif callable(getattr(tok, "piece_bytes", None)):
            table = tuple(tok.piece_bytes())
        else:
            raise ConfigError(f"expected a sentencepiece or GGUF tokenizer, got "
                              f"{type(tok).__name__}")
        first = tok.encode("a")
        dummy = bool(first) and (table[first[0]] or b"").startswith(b" ")
        return cls(table, int(tok.eos_id), tok.encode, dummy)

    def canonical(self, text: bytes) -> list[int] | None:
        try:
            s = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if self.dummy_prefix and s.startswith(" "):
            s = s[1:]
        return list(self.encode(s)) if s else []

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._matrix:
            lengths = np.array([len(b or b"") for b in self.token_bytes], dtype=np.int32)
            mat = np.zeros((self.size, max(1, int(lengths.max()))), dtype=np.uint8)
            for i, b in enumerate(self.token_bytes):
                if b:
                    mat[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
            self._matrix.update(mat=mat, lengths=lengths)
        return self._matrix["mat"], self._matrix["lengths"]

    def text_of(self, ids: Sequence[int]) -> bytes:
        return b"".join(self.token_bytes[i] or b"" for i in ids)


def _piece_bytes(sp: object, i: int) -> bytes | None:
    if sp.IsControl(i) or sp.IsUnknown(i) or sp.IsUnused(i):
        return None
    piece = sp.IdToPiece(i)
    if sp.IsByte(i):  # "<0x0A>"
        return bytes([int(piece[3:5], 16)])
    return piece.replace(SPACE_PIECE, " ").encode("utf-8")
