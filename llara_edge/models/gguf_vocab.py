"""A GGUF file's own tokenizer vocabulary, read without llama.cpp, and a plain SPM encoder.

Contract:
    vocab = read_gguf_vocab(path)      # GgufVocab: tokens, scores, token_type, special ids,
                                       # add_bos, add_space_prefix; ArtifactError on a file
                                       # that is not GGUF, is truncated, or has no (SPM) vocab
    spm_encode(vocab, text) -> list[int]   # llama.cpp's SPM tokenisation, no BOS

Only the header and the metadata key/values are read (the tensor data of a 7B GGUF is never
touched). GGUF layout (v2/v3): b"GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv times
(string key, u32 type, value); strings are u64 length + UTF-8 bytes, arrays u32 element type
+ u64 count + elements, all little-endian.

`spm_encode` is the reference beside llama.cpp's tokenizer (gguf_tokenizer uses llama.cpp):
a transcription of llama.cpp's llm_tokenizer_spm (src/llama-vocab.cpp). Spaces become "▁",
one "▁" is put in front of a text that follows a special token or starts the input
(add_space_prefix); the text is split into UTF-8 characters; the adjacent pair whose
concatenation is a token with the highest score is merged (ties: the leftmost) until none is
left; a character that is no token becomes its UTF-8 bytes as byte-fallback tokens "<0xAB>".
User-defined tokens are matched in the raw text first (tokenizer_st_partition with
parse_special=False: control tokens are not).
"""

from __future__ import annotations

import hashlib
import heapq
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llara_edge.errors import ArtifactError

SPACE = "▁"
# llama.h enum llama_token_type (the GGUF's tokenizer.ggml.token_type values)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # GGUF value type -> struct format
_NUMPY = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1",
          10: "<u8", 11: "<i8", 12: "<f8"}
STRING, ARRAY = 8, 9
MAX_STRING = 1 << 24  # a longer key or token is a corrupt length, not data


@dataclass(frozen=True)
class GgufVocab:
    """The tokenizer.ggml.* metadata of one GGUF."""

    path: Path
    tokens: tuple[str, ...]
    scores: np.ndarray  # float32 (V,)
    token_type: np.ndarray  # int32 (V,), NORMAL..BYTE
    bos_id: int
    eos_id: int
    unk_id: int
    pad_id: int  # -1: none
    add_bos: bool
    add_space_prefix: bool
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.tokens)
        if len(self.scores) != n or len(self.token_type) != n:
            raise ArtifactError(f"{self.path}: {n} tokens but {len(self.scores)} scores and "
                                f"{len(self.token_type)} token types")
        for name in ("bos_id", "eos_id", "unk_id"):
            if not 0 <= getattr(self, name) < n:
                raise ArtifactError(f"{self.path}: {name} {getattr(self, name)} outside the "
                                    f"{n}-token vocabulary")

    @property
    def size(self) -> int:
        return len(self.tokens)

    def token_id(self, text: str) -> int | None:
        """Id of the token spelled `text` (the first one, as llama.cpp's token_to_id)."""
        if not self._index:
            index: dict[str, int] = {}
            for i, t in enumerate(self.tokens):
                index.setdefault(t, i)
            self._index.update(index)
        return self._index.get(text)

    def digest(self) -> str:
        """sha256 over the vocabulary itself (not the file: a 7B GGUF is gigabytes)."""
        h = hashlib.sha256()
        h.update("\x00".join(self.tokens).encode("utf-8"))
        h.update(np.ascontiguousarray(self.scores, "<f4").tobytes())
        h.update(np.ascontiguousarray(self.token_type, "<i4").tobytes())
        h.update(repr((self.bos_id, self.eos_id, self.unk_id, self.pad_id, self.add_bos,
                       self.add_space_prefix)).encode())
        return h.hexdigest()


class _Reader:
    """Little-endian reads from a file that raise ArtifactError when it ends early."""

    def __init__(self, fh, path: Path):
        self.fh, self.path = fh, path

    def take(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise ArtifactError(f"truncated GGUF {self.path} (metadata ends early)")
        return data

    def scalar(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > MAX_STRING:
            raise ArtifactError(f"corrupt GGUF {self.path}: string length {n}")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ArtifactError(f"corrupt GGUF {self.path}: a string is not UTF-8") from err

    def value(self, vtype: int):
        if vtype == STRING:
            return self.string()
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype != ARRAY:
            raise ArtifactError(f"corrupt GGUF {self.path}: value type {vtype}")
        etype, count = self.scalar("<I"), self.scalar("<Q")
        if etype == STRING:
            return [self.string() for _ in range(count)]
        if etype not in _NUMPY:
            raise ArtifactError(f"corrupt GGUF {self.path}: array element type {etype}")
        dtype = np.dtype(_NUMPY[etype])
        if count * dtype.itemsize > 1 << 31:
            raise ArtifactError(f"corrupt GGUF {self.path}: array of {count} elements")
        return np.frombuffer(self.take(count * dtype.itemsize), dtype=dtype)


def read_gguf_metadata(path: str | Path) -> dict[str, object]:
    """The key/value metadata of a GGUF (header only)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            r = _Reader(fh, path)
            if r.take(4) != b"GGUF":
                raise ArtifactError(f"{path} is not a GGUF file (bad magic)")
            version = r.scalar("<I")
            if version not in (2, 3):
                raise ArtifactError(f"{path}: unsupported GGUF version {version}")
            r.scalar("<Q")  # tensor count
            n_kv = r.scalar("<Q")
            if n_kv > 1 << 20:
                raise ArtifactError(f"corrupt GGUF {path}: {n_kv} metadata entries")
            meta = {}
            for _ in range(n_kv):
                key = r.string()
                meta[key] = r.value(r.scalar("<I"))
            return meta
    except OSError as err:
        raise ArtifactError(f"cannot read GGUF {path}: {err}") from err


def read_gguf_vocab(path: str | Path) -> GgufVocab:
    """The SPM (LLaMA) vocabulary stored in a GGUF's tokenizer.ggml.* keys."""
    path = Path(path)
    meta = read_gguf_metadata(path)
    model = meta.get("tokenizer.ggml.model")
    if model is None or "tokenizer.ggml.tokens" not in meta:
        raise ArtifactError(f"GGUF {path} holds no tokenizer vocabulary "
                            "(no tokenizer.ggml.model / tokenizer.ggml.tokens)")
    if model != "llama":
        raise ArtifactError(f"GGUF {path}: tokenizer model {model!r} is not supported "
                            "(only SentencePiece 'llama' vocabularies)")
    tokens = tuple(meta["tokenizer.ggml.tokens"])
    n = len(tokens)
    scores = np.asarray(meta.get("tokenizer.ggml.scores", np.zeros(n)), np.float32)
    types = np.asarray(meta.get("tokenizer.ggml.token_type", np.full(n, NORMAL)), np.int32)

    def ident(key: str, default: int) -> int:
        return int(meta.get(f"tokenizer.ggml.{key}", default))

    return GgufVocab(path=path, tokens=tokens, scores=scores, token_type=types,
                     bos_id=ident("bos_token_id", 1), eos_id=ident("eos_token_id", 2),
                     unk_id=ident("unknown_token_id", 0), pad_id=ident("padding_token_id", -1),
                     add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", True)),
                     add_space_prefix=bool(meta.get("tokenizer.ggml.add_space_prefix", True)))


# --- the reference SPM tokenizer ---------------------------------------------------------
def _partition(vocab: GgufVocab, text: str) -> list[str | int]:
    """Raw-text fragments and user-defined token ids (longest token first)."""
    special = vocab._index.get("__user__")
    if special is None:
        ids = np.flatnonzero(vocab.token_type == USER_DEFINED)
        special = sorted(((vocab.tokens[i], int(i)) for i in ids if vocab.tokens[i]),
                         key=lambda p: -len(p[0]))
        vocab._index["__user__"] = special
    parts: list[str | int] = [text]
    for tok, tid in special:
        out: list[str | int] = []
        for part in parts:
            if not isinstance(part, str) or tok not in part:
                out.append(part)
                continue
            pieces = part.split(tok)
            for k, piece in enumerate(pieces):
                if k:
                    out.append(tid)
                if piece:
                    out.append(piece)
        parts = out
    return parts


def spm_encode(vocab: GgufVocab, text: str) -> list[int]:
    """llama.cpp's SPM tokenisation of `text` (add_special=False, parse_special=False)."""
    if not text:
        return []
    vocab.token_id("")  # build the index
    out: list[int] = []
    prev_special = True
    for part in _partition(vocab, text):
        if isinstance(part, int):
            out.append(part)
            prev_special = True
            continue
        prefix = " " if vocab.add_space_prefix and prev_special else ""
        _spm_session(vocab, (prefix + part).replace(" ", SPACE), out)
        prev_special = False
    return out


def _spm_session(vocab: GgufVocab, text: str, out: list[int]) -> None:
    """Bigram merges by score over the characters of `text` (llm_tokenizer_spm_session)."""
    sym = list(text)  # symbol i's text; "" once merged into its left neighbour
    nxt = [*range(1, len(sym)), -1]
    prv = list(range(-1, len(sym) - 1))
    queue: list[tuple[float, int, str]] = []  # (-score, left index, joined): best, leftmost

    def add_bigram(left: int, right: int) -> None:
        if left >= 0 and right >= 0:
            joined = sym[left] + sym[right]
            tid = vocab.token_id(joined)
            if tid is not None:
                heapq.heappush(queue, (-float(vocab.scores[tid]), left, joined))

    for i in range(1, len(sym)):
        add_bigram(i - 1, i)
    while queue:
        _, left, joined = heapq.heappop(queue)
        right = nxt[left]
        if right < 0 or not sym[left] or not sym[right] or sym[left] + sym[right] != joined:
            continue  # outdated: one side was merged since
        sym[left], sym[right] = joined, ""
        nxt[left] = nxt[right]
        if nxt[right] >= 0:
            prv[nxt[right]] = left
        add_bigram(prv[left], left)
        add_bigram(left, nxt[left])
    i = 0
    while i >= 0:
        _resegment(vocab, sym[i], out)
        i = nxt[i]


def _resegment(vocab: GgufVocab, text: str, out: list[int]) -> None:
    """A symbol's token, else its UTF-8 bytes as byte-fallback tokens. (llama.cpp also looks
    the symbol up in its merge history, but every merged symbol is a token, so only single
    characters outside the vocabulary get here.)"""
    tid = vocab.token_id(text)
    if tid is not None:
        out.append(tid)
        return
    for b in text.encode("utf-8"):
        byte_id = vocab.token_id(f"<0x{b:02X}>")
        out.append(vocab.unk_id if byte_id is None else byte_id)
