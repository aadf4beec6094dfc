"""The nearest valid name for a misspelt one: the hint of every strict reader (robot TOML,
export manifest).

Contract:
    did_you_mean(name, valid, show=str) -> "did you mean X?" (difflib's closest name, when
        one is close) or "valid: a, b, c" (none is close); `show` formats a valid name
        (e.g. "[workspace]" for a table).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

CUTOFF = 0.6  # difflib similarity below which a name is not offered as the intended one


def did_you_mean(name: str, valid: Iterable[str], show: Callable[[str], str] = str) -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=CUTOFF)
    if not close:  # case slips ("Workspace") score low on short names: compare folded
        folded = {v.lower(): v for v in valid}
        close = [folded[c] for c in difflib.get_close_matches(name.lower(), list(folded), n=1,
                                                               cutoff=CUTOFF)]
    if close:
        return f"did you mean {show(close[0])}?"
    return "valid: " + ", ".join(show(v) for v in valid)
