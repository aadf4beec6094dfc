"""Prompt-lookup drafts for speculative constrained decoding (no draft model needed).

Contract:
    draft = PromptLookup(source_ids, PromptLookupConfig(max_draft=16, ngram_max=4, ngram_min=2))
    draft(answer_ids) -> list[int]   # up to max_draft tokens that followed, in source_ids,
                                     # the longest suffix of answer_ids found there

Why it pays for LLaRA: a D-inBC prompt carries every object's box as text,
`<p>red block</p> at <b>(0.312, 0.617), {0.061, 0.094}</b>`, and the answer names the same
object and (for a pick at the box centre) the same digits, `<p>red block</p> at
<b>(0.312, 0.617)</b>`. Drafting those tokens from the prompt and verifying them in one
forward pass (kernels.constrained_decode, `Lookahead`) replaces up to a dozen one-token decode
passes by one pass over a dozen tokens; on a memory-bound edge GPU the two cost about the
same. Verification keeps only what greedy decoding would have chosen, so the answer is the
same token for token; a wrong draft costs its extra width in one pass and a KV rollback.

Matching: n-grams of length ngram_max down to ngram_min; among the occurrences of the longest
suffix that matches, the first one at or after the end of the previous draft's source span is
preferred (answers copy the prompt's boxes in order: the object before the zone), else the
first one. `reference_lookup` is the plain brute-force scan the tests compare against.
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

    def __post_init__(self) -> None:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ConfigError(f"need 1 <= ngram_min <= ngram_max, got {self.ngram_min}, "
                              f"{self.ngram_max}")
        if self.max_draft < 1:
            raise ConfigError(f"max_draft must be >= 1, got {self.max_draft}")


class PromptLookup:
    """Drafts answer continuations from one prompt's token ids (one instance per step)."""

    def __init__(self, source_ids: Sequence[int], config: PromptLookupConfig | None = None):
        self.cfg = config or PromptLookupConfig()
        self.source = [int(t) for t in source_ids]
        self._cursor = 0  # end of the previous draft's source span
        # n-gram -> start positions (ascending) whose continuation exists
        self._index: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for n in range(self.cfg.ngram_min, self.cfg.ngram_max + 1):
            for i in range(len(self.source) - n):
                self._index[tuple(self.source[i:i + n])].append(i)

    def __call__(self, answer_ids: Sequence[int]) -> list[int]:
        for n in range(min(self.cfg.ngram_max, len(answer_ids)), self.cfg.ngram_min - 1, -1):
            starts = self._index.get(tuple(answer_ids[-n:]))
            if not starts:
                continue
            start = next((s for s in starts if s + n >= self._cursor), starts[0]) + n
            draft = self.source[start:start + self.cfg.max_draft]
            self._cursor = start + len(draft)
            return draft
        return []


def reference_lookup(source: Sequence[int], answer: Sequence[int], cursor: int,
                     cfg: PromptLookupConfig) -> tuple[list[int], int]:
    """Brute-force twin of PromptLookup.__call__: (draft, new cursor)."""
    source, answer = list(source), list(answer)
    for n in range(min(cfg.ngram_max, len(answer)), cfg.ngram_min - 1, -1):
        key = answer[-n:]
        starts = [i for i in range(len(source) - n) if source[i:i + n] == key]
        if not starts:
            continue
        after = [s for s in starts if s + n >= cursor]
        start = (after[0] if after else starts[0]) + n
        draft = source[start:start + cfg.max_draft]
        return draft, start + len(draft)
    return [], cursor
