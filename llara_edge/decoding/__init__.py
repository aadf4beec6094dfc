"""llara_edge.decoding: an answer grammar compiled against a vocabulary, and decoding under it.

- grammar: `answer_grammars` (the byte-level grammars of each answer form, `GRAMMARS`),
  `bytefsm` (their byte automata), `token_vocab` + `token_grammar` (compiled against a
  tokenizer's vocabulary: a per-state token mask, `compile_grammar`), `grammar_cache` (compiled
  grammars cached on disk), `step_header` (LLaRA's "Step k:" header pinned per step),
  `object_names` (answer names bounded / restricted per prompt), `answer_views` (both views
  of one task's answer, as the runtime policy decodes it);
- decoding: `constrained_decode` (greedy decoding with jump forward over forced runs,
  `decode_constrained`, `decode_greedy`), `prompt_lookup` (drafts from the prompt, verified in
  one pass).
The masked argmax at its core is a kernel (llara_kernels.masked_argmax). Names below are
imported on first use.
"""

from __future__ import annotations

from llara_edge.lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "compile_grammar": "token_grammar",
    "TokenGrammar": "token_grammar",
    "GrammarSpec": "answer_grammars",
    "GRAMMARS": "answer_grammars",
    "decode_constrained": "constrained_decode",
    "decode_greedy": "constrained_decode",
    "DecodeResult": "constrained_decode",
    "Lookahead": "constrained_decode",
    "PromptLookup": "prompt_lookup",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
