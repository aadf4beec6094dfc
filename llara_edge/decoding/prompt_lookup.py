"""Prompt-lookup drafts for speculative constrained decoding (no draft model needed).

Contract:
    draft = PromptLookup(source_ids, PromptLookupConfig(max_draft=16, ngram_max=4, ngram_min=2),
                         aliases={id_of_two_spaces: id_of_one_space})
    draft(answer_ids) -> list[int]   # up to `draft.limit` tokens that followed, in
                                     # source_ids, every kept occurrence of the longest
                                     # suffix of answer_ids found there
    draft.feedback(drafted, accepted)  # after a verify: adapts draft.limit

Why it pays for LLaRA: a D-inBC prompt carries every object's box as text,
`<p>red block</p> at <b>(0.312, 0.617), {0.061, 0.094}</b>`, and the answer names the same
object and (for a pick at the box centre) the same digits, `<p>red block</p> at
<b>(0.312, 0.617)</b>`. Drafting those tokens from the prompt and verifying them in one
forward pass (kernels.constrained_decode, `Lookahead`) replaces up to a dozen one-token decode
passes by one pass over a dozen tokens; on a memory-bound edge GPU the two cost about the
same. Verification keeps only what greedy decoding would have chosen, so the answer is the
same token for token; a wrong draft costs its extra width in one pass and a KV rollback.

Matching: n-grams of length ngram_max down to ngram_min. The occurrences of the longest
suffix that matches are narrowed to those at or after the end of the previous draft's source
span (answers copy the prompt's boxes in order: the object before the zone), when there are
any. The draft is the longest common prefix of their continuations: an ambiguous match
(`<p>` before several object names, `<b>(0.` before several boxes) drafts only what they
share, often nothing, and the model's own choice of the first differing token then selects
the object. Guessing one of them was wrong most of the time on the tiny policy's frames and
made each verify pass wider for nothing.

Adaptive length: `feedback(drafted, accepted)` (the decoder calls it after each verify pass,
kernels.constrained_decode.Lookahead) caps the next drafts at `miss_draft` tokens after a
draft was rejected, until one is accepted whole, then max_draft again. The prompt's box is
worth copying only while the model copies it (visual manipulation); where it does not
(rotate, scene understanding) short drafts waste less.

Aliases: ids looked up as another id (source and answer alike). Released LLaRA checkpoints
write two spaces after the first point's comma, "(0.312,  0.617)", where the prompt's box has
one: with the real LLaMA vocabulary that is the piece "▁▁" against "▁", and without an alias
the n-grams after it match nothing until three more digits are chosen one pass each.
`whitespace_aliases(token_bytes)` gives every all-space piece one key (drafts are still
copied from the source's own ids; only the matching is aliased).

`reference_lookup` is the plain brute-force scan the tests compare against.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from llara_edge.errors import ConfigError


@dataclass(frozen=True)
class PromptLookupConfig:
    max_draft: int = 16  # tokens per draft (the verify pass is 1 + this wide at most)
    ngram_max: int = 4  # longest answer suffix looked up
    ngram_min: int = 2  # shortest (1 would draft after every digit and space)
    miss_draft: int = 4  # tokens per draft after a rejected one (at most max_draft;
    #                     >= max_draft: no adaptation)

    def __post_init__(self) -> None:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ConfigError(f"need 1 <= ngram_min <= ngram_max, got {self.ngram_min}, "
                              f"{self.ngram_max}")
        if self.max_draft < 1 or self.miss_draft < 1:
            raise ConfigError(f"max_draft and miss_draft must be >= 1, got {self.max_draft}, "
                              f"{self.miss_draft}")


class PromptLookup:
    """Drafts answer continuations from one prompt's token ids (one instance per step)."""

    def __init__(self, source_ids: Sequence[int], config: PromptLookupConfig | None = None,
                 aliases: dict[int, int] | None = None):
        self.cfg = config or PromptLookupConfig()
        self.aliases = dict(aliases or {})
        self.source = [int(t) for t in source_ids]
        keyed = [self.aliases.get(t, t) for t in self.source]  # n-gram keys, aliases applied
        self._cursor = 0  # end of the previous draft's source span
        self.limit = self.cfg.max_draft  # tokens of the next draft (feedback adapts it)
        # n-gram -> start positions (ascending) whose continuation exists
        self._index: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for n in range(self.cfg.ngram_min, self.cfg.ngram_max + 1):
            for i in range(len(self.source) - n):
                self._index[tuple(keyed[i:i + n])].append(i)

    def __call__(self, answer_ids: Sequence[int]) -> list[int]:
        alias = self.aliases.get
        for n in range(min(self.cfg.ngram_max, len(answer_ids)), self.cfg.ngram_min - 1, -1):
            starts = self._index.get(tuple(alias(int(t), int(t)) for t in answer_ids[-n:]))
            if not starts:
                continue
            starts = [s for s in starts if s + n >= self._cursor] or starts
            draft = _common_prefix(self.source, [s + n for s in starts], self.limit)
            if draft:
                self._cursor = starts[0] + n + len(draft)
            return draft
        return []

    def feedback(self, drafted: int, accepted: int) -> None:
        """How many of the last draft's tokens (as fed, after the grammar's cut) greedy kept."""
        cfg = self.cfg
        self.limit = cfg.max_draft if accepted >= drafted else min(cfg.miss_draft, cfg.max_draft)


def _common_prefix(source: list[int], starts: list[int], limit: int) -> list[int]:
    """The longest run (<= limit) that follows every one of `starts` in `source`."""
    first = source[starts[0]:starts[0] + limit]
    for s in starts[1:]:
        k = 0
        while k < len(first) and s + k < len(source) and source[s + k] == first[k]:
            k += 1
        first = first[:k]
    return first


def whitespace_aliases(token_bytes: Sequence[bytes | None]) -> dict[int, int]:
    """Every all-space piece (one space or more; a vocabulary may hold several one-space
    pieces, e.g. "▁" and the byte piece <0x20>) keyed as the lowest such id ({} if none)."""
    spaces = [i for i, b in enumerate(token_bytes) if b and b.strip(b" ") == b""]
    return {i: spaces[0] for i in spaces[1:]} if len(spaces) > 1 else {}


def reference_lookup(source: Sequence[int], answer: Sequence[int], cursor: int,
                     cfg: PromptLookupConfig, limit: int | None = None,
                     aliases: dict[int, int] | None = None) -> tuple[list[int], int]:
    """Brute-force twin of PromptLookup.__call__ at draft limit `limit` (None: max_draft):
    (draft, new cursor)."""
    source, answer = list(source), list(answer)
    aliases = aliases or {}
    keyed = [aliases.get(t, t) for t in source]
    limit = cfg.max_draft if limit is None else limit
    for n in range(min(cfg.ngram_max, len(answer)), cfg.ngram_min - 1, -1):
        key = [aliases.get(t, t) for t in answer[-n:]]
        starts = [i for i in range(len(source) - n) if keyed[i:i + n] == key]
        if not starts:
            continue
        starts = [s for s in starts if s + n >= cursor] or starts
        conts = [source[s + n:s + n + limit] for s in starts]
        k = 0
        while k < len(conts[0]) and all(len(c) > k and c[k] == conts[0][k] for c in conts):
            k += 1
        return conts[0][:k], (starts[0] + n + k if k else cursor)
    return [], cursor
