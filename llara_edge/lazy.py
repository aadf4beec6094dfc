"""Lazy package exports: `import llara_edge.decoding` stays cheap, names import on first use.

    __getattr__, __all__ = lazy_exports(__name__, {"Policy": "policy", ...})  # name -> submodule
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object],
                                                                 list[str]]:
    """A module-level `__getattr__` importing `package.<exports[name]>` on first use, and
    the sorted `__all__`."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__, sorted(exports)
