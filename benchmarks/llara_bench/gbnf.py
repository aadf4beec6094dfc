"""The LLaRA step answer as a GBNF grammar, for llama.cpp's own grammar sampler (baseline b).

Contract:
    llara_step_gbnf(names=None) -> str        # GBNF text (root rule "root")
    prompt_names(user_text) -> tuple[str, ...]  # object names inlined as <p>NAME</p>

The language is the one `llara_edge.decoding.answer_grammars` builds for kind "llara" (one
step, either tool, one or two spaces in the first point, coordinates "0.ddd" or "1.000",
rotation -359..359 without leading zeros or "-0", FORMATS.md §2), written in the syntax of
llama.cpp's grammars/README.md so that the stock chat handler constrains decoding to the same
answers the project's token automaton allows. With `names`, NAME is one of them (as the
project's decoder does when the prompt names the objects); otherwise any text without
<>()[]{} and without leading or trailing spaces. The answer may start with one space
(the tokenizer's "▁Step" after "ASSISTANT:").
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from llara_edge.formats.llara import VERBS, check_name

_P_TAG_RE = re.compile(r"<p>(.*?)</p>")

_COMMON = r"""
coord ::= "0." [0-9] [0-9] [0-9] | "1.000"
rot ::= "0" | "-"? [1-9] [0-9]? | "-"? [12] [0-9] [0-9] | "-"? "3" [0-5] [0-9]
pt1 ::= "<b>(" coord "," (" " | "  ") coord ")</b>"
pt2 ::= "<b>(" coord ", " coord ")</b>"
stepno ::= [1-9] [0-9]?
"""
_ANY_NAME = r'name ::= [^<>()\[\]{} \x00-\x1f] ([^<>()\[\]{}\x00-\x1f]* [^<>()\[\]{} \x00-\x1f])?'


def _lit(text: str) -> str:
    """A GBNF string literal (JSON escaping is a subset of GBNF's)."""
    return json.dumps(text, ensure_ascii=False)


def llara_step_gbnf(names: Sequence[str] | None = None) -> str:
    """GBNF of one LLaRA step answer (see the module docstring)."""
    tools = []
    for opening, closing in VERBS.values():
        tools.append(f'{_lit(opening + " the <p>")} name "</p> at " pt1 '
                     f'", rotate <r>[" rot "]</r> degrees, and " {_lit(closing + " at ")} pt2 "."')
    lines = [f'root ::= " "? "Step " stepno ": " ({" | ".join(f"({t})" for t in tools)})']
    if names:
        lines.append("name ::= " + " | ".join(_lit(check_name(n)) for n in dict.fromkeys(names)))
    else:
        lines.append(_ANY_NAME)
    return "\n".join(lines) + _COMMON


def prompt_names(user_text: str) -> tuple[str, ...]:
    """Object names of a D-inBC prompt, in order of first appearance."""
    return tuple(dict.fromkeys(_P_TAG_RE.findall(user_text)))
