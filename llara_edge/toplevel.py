"""Keep the repository's top-level folders from shadowing installed distributions.

Contract (the first lines of kernels/, export/, hw_drivers/ and benchmarks/ `__init__.py`):
    if __name__ != "llara_edge.kernels":      # imported as top-level `kernels`
        from llara_edge.toplevel import defer
        defer(__name__, __file__)             # the import then yields the installed one

The folders are installed as `llara_edge.kernels`, `llara_edge.export`, ... (setup.py). But
`python -m pytest`, `python -c` and `python -m ...` run from the repository root put the root
first on sys.path, so a bare `import kernels` would find the folder before site-packages: the
PyPI package `kernels` (a dependency of transformers >= 5.25) was shadowed by ours and
`from kernels import CUDAProperties` failed. A folder imported under its bare name calls
`defer`, which loads the installed distribution of that name from the rest of sys.path and puts
it in sys.modules in place of the folder (the import statement returns what sys.modules holds),
or, where none is installed, raises ModuleNotFoundError as if the folder were not there.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path


def _other_entries(root: Path) -> list[str]:
    """sys.path without the entries that resolve to the repository root."""
    keep = []
    for entry in sys.path:
        try:
            same = Path(entry or os.getcwd()).resolve() == root
        except OSError:
            same = False
        if not same:
            keep.append(entry)
    return keep


def defer(name: str, init_file: str) -> None:
    """Replace the half-imported repo folder `name` by the installed distribution `name`."""
    root = Path(init_file).resolve().parent.parent
    spec = importlib.machinery.PathFinder.find_spec(name, _other_entries(root))
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(
            f"No module named {name!r} (the repository folder {name}/ is imported as "
            f"'llara_edge.{name}')", name=name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
