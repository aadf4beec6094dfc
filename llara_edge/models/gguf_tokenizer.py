"""The runtime tokenizer of an artifact that ships only a GGUF: the GGUF's own vocabulary.

Contract (the interface of models.tokenizer.SpmTokenizer):
    tok = GgufTokenizer(gguf_path, engine="llama.cpp")   # or engine="python" (reference)
    tok.encode(text) -> list[int]                      # no BOS; with the dummy-prefix space
    tok.tokenizer_image_token(prompt) -> list[int]     # [BOS] + chunks joined by -200
    tok.decode(ids) -> str                             # skip_special_tokens=True semantics
    tok.bos_id, tok.eos_id, tok.unk_id, tok.pad_id, tok.vocab_size, tok.id_to_piece(i)
    tok.piece_bytes() -> tuple[bytes | None, ...]      # what each id spells (TokenVocab)
    tok.vocab_digest                                   # sha256 of the vocabulary (cache key)

The vocabulary (tokens, scores, token types, special ids, add_bos, add_space_prefix) comes
from the GGUF's tokenizer.ggml.* metadata (models.gguf_vocab, header only). Encoding engines
(registry ENGINES): "llama.cpp" is llama.cpp's own tokenizer (llama_tokenize, add_special=
False, parse_special=False) on a vocab_only model owned by llara_edge.llama, i.e.
exactly the ids the gguf backend's model was trained / exported with; "python" is the plain
transcription of llama.cpp's SPM algorithm (gguf_vocab.spm_encode), the reference the tests
compare it with. A GGUF without a vocabulary, a non-SPM vocabulary or a corrupt file raises
ArtifactError.

`tokenizer_image_token` and `decode` follow SpmTokenizer: chunks between LLaRA's `<image\\d*?>`
tags are each encoded on their own (each with the dummy prefix, as LLaVA does); decode drops
BOS/EOS/UNK/PAD, control and unused tokens and ids past the vocabulary (llava-hf's added
`<image>`), joins the pieces ("▁" -> space, "<0xAB>" -> that byte) and removes the one leading
space the dummy prefix put there, as sentencepiece's DecodeIds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llara_edge.errors import ArtifactError
from llara_edge.formats.templates import image_token_ids
from llara_edge.models.gguf_vocab import (
    BYTE,
    CONTROL,
    SPACE,
    UNKNOWN,
    UNUSED,
    GgufVocab,
    read_gguf_vocab,
    spm_encode,
)


class PythonSpm:
    """Reference engine: llama.cpp's SPM algorithm in Python over the GGUF's vocabulary."""

    def __init__(self, vocab: GgufVocab):
        self.vocab = vocab

    def encode(self, text: str) -> list[int]:
        return spm_encode(self.vocab, text)


class LlamaCppSpm:
    """llama.cpp's tokenizer on a vocab_only model (no weights are loaded)."""

    def __init__(self, vocab: GgufVocab):
        from llara_edge.llama import LlamaModel

        self._model = LlamaModel(vocab.path, vocab_only=True)  # freed with this object
        if self._model.n_vocab != vocab.size:
            n = self._model.n_vocab
            self._model.close()
            raise ArtifactError(f"{vocab.path}: llama.cpp sees {n} tokens, metadata {vocab.size}")

    def encode(self, text: str) -> list[int]:
        return self._model.tokenize(text) if text else []


ENGINES = {"llama.cpp": LlamaCppSpm, "python": PythonSpm}


class GgufTokenizer:
    """SpmTokenizer's interface over the vocabulary stored in a GGUF file."""

    def __init__(self, gguf_path: str | Path, engine: str = "llama.cpp"):
        if engine not in ENGINES:
            raise ArtifactError(f"unknown tokenizer engine {engine!r}; known: {sorted(ENGINES)}")
        self.model_file = Path(gguf_path)
        if not self.model_file.is_file():
            raise ArtifactError(f"GGUF not found: {self.model_file}")
        self._setup(self.model_file, read_gguf_vocab(self.model_file), engine)

    def _setup(self, path: Path, vocab: GgufVocab, engine: str) -> None:
        self.model_file, self.vocab, self.engine_name = path, vocab, engine
        self._engine = ENGINES[engine](vocab)
        v = vocab
        self.bos_id, self.eos_id, self.unk_id, self.pad_id = v.bos_id, v.eos_id, v.unk_id, v.pad_id
        self.vocab_digest = v.digest()
        self._pieces = tuple(_piece_bytes(v, i) for i in range(v.size))
        self._skip = np.array([b is None for b in self._pieces], dtype=bool)
        self._skip[[i for i in (v.bos_id, v.eos_id, v.unk_id, v.pad_id) if i >= 0]] = True

    def __getstate__(self) -> dict:
        """Pickled (inside a cached grammar) as its vocabulary, not the llama.cpp handle."""
        return {"vocab": self.vocab, "engine": self.engine_name}

    def __setstate__(self, state: dict) -> None:
        """Back to llama.cpp when the GGUF is still there with the same vocabulary, else
        to the reference engine (the same ids, tested; the cache may outlive the file)."""
        vocab, engine = state["vocab"], state["engine"]
        if engine != "python":
            try:
                same = read_gguf_vocab(vocab.path).digest() == vocab.digest()
            except ArtifactError:
                same = False
            engine = engine if same else "python"
        self._setup(vocab.path, vocab, engine)

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    @property
    def dummy_prefix(self) -> bool:
        return self.vocab.add_space_prefix

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no BOS/EOS)."""
        return self._engine.encode(text)

    def tokenizer_image_token(self, prompt: str, add_bos: bool = True) -> list[int]:
        """LLaVA's tokenizer_image_token: [BOS] chunk0 -200 chunk1 -200 ... chunkN."""
        return image_token_ids(self.encode, prompt, self.bos_id if add_bos else None)

    def decode(self, ids: list[int]) -> str:
        """Text of `ids` with special and out-of-vocabulary (added) tokens skipped."""
        n = self.vocab.size
        data = b"".join(self._pieces[i] for i in map(int, ids)
                        if 0 <= i < n and not self._skip[i])
        text = data.decode("utf-8", errors="replace")
        return text[1:] if self.vocab.add_space_prefix and text.startswith(" ") else text

    def id_to_piece(self, token_id: int) -> str:
        return self.vocab.tokens[int(token_id)]

    def piece_bytes(self) -> tuple[bytes | None, ...]:
        """Per id the bytes it spells; None for BOS/EOS/UNK, control and unused tokens."""
        return self._pieces


def _piece_bytes(vocab: GgufVocab, i: int) -> bytes | None:
    kind = int(vocab.token_type[i])
    if kind in (CONTROL, UNKNOWN, UNUSED):
        return None
    piece = vocab.tokens[i]
    if kind == BYTE:  # "<0x0A>"
        return bytes([int(piece[3:5], 16)])
    return piece.replace(SPACE, " ").encode("utf-8")
