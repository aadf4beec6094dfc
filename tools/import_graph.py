"""Import graph of the repository: what points up, what goes round, what a graph tool misses.

    python tools/import_graph.py [--json] [--root DIR]

Every import statement of every .py file of the components (module level, inside functions,
and under `if TYPE_CHECKING:`, as import-linter counts them) is resolved to a module of the
repository the way Python would resolve it once installed; each importing/imported module
pair is one edge, counted three ways:
- up: the importing module's layer is below the imported one's (`LAYERS`, lowest first);
- circles: strongly connected groups of two or more modules (an import cycle, lazy or not);
- unplaceable: the imported module exists in the repository, but grimp (the graph library
  under import-linter) does not find it when it builds the graph of the importable packages,
  so no graph tool sees that edge.
Layouts: "namespace" (setup.py maps kernels/, export/, ... to llara_edge.kernels, ...) and
"workspace" (each card folder is a distribution with its own package); detected from the tree.
Prints a table (counts and the first offenders) and one JSON line last.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# component -> (layer, [(import name, folder of that package)]), lowest layer first
LAYOUTS = {
    "namespace": {
        "drivers": (0, [("llara_edge.hw_drivers", "hw_drivers")]),
        "kernels": (0, [("llara_edge.kernels", "kernels")]),
        "runtime": (1, [("llara_edge", "llara_edge")]),
        "export": (2, [("llara_export", "export")]),
        "bench": (3, [("llara_bench", "benchmarks")]),
    },
    "workspace": {
        "drivers": (0, [("llara_drivers", "hw_drivers/llara_drivers")]),
        "kernels": (0, [("llara_kernels", "kernels/llara_kernels")]),
        "runtime": (1, [("llara_edge", "llara_edge")]),
        "export": (2, [("llara_export", "export/llara_export")]),
        "bench": (3, [("llara_bench", "benchmarks/llara_bench")]),
    },
}


def detect(root: Path) -> str:
    return "namespace" if (root / "llara_edge" / "toplevel.py").is_file() else "workspace"


def modules(root: Path, layout: dict) -> dict[str, tuple[Path, str]]:
    """module name -> (file, component); longest package prefix wins (llara_edge.kernels)."""
    found: dict[str, tuple[Path, str]] = {}
    for comp, (_, packages) in layout.items():
        for name, folder in packages:
            base = root / folder
            for path in sorted(base.rglob("*.py")):
                rel = path.relative_to(base).with_suffix("")
                parts = [p for p in rel.parts if p != "__init__"]
                if any(p.startswith(".") or p == "__pycache__" for p in parts):
                    continue
                found[".".join([name, *parts])] = (path, comp)
    return found


def imports_of(path: Path, module: str, is_package: bool) -> list[str]:
    """Absolute names imported by a file (from-imports give both the module and module.name)."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.append(base)
            out.extend(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return out


def resolve(name: str, known: dict) -> str | None:
    """The repository module an imported name lands in (longest known prefix), or None."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return None


def edges(root: Path, layout: dict) -> tuple[dict, set[tuple[str, str]]]:
    known = modules(root, layout)
    found = set()
    for mod, (path, _) in known.items():
        for name in imports_of(path, mod, path.name == "__init__.py"):
            target = resolve(name, known)
            if target and target != mod and not mod.startswith(target + "."):
                found.add((mod, target))  # a submodule's import of its own package is no edge
    return known, found


def circles(nodes, graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of size > 1 (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    group = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        group.append(x)
                        if x == v:
                            break
                    if len(group) > 1:
                        out.append(sorted(group))
            elif w not in index:
                index[w] = low[w] = counter[0]
                counter[0] += 1
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(graph.get(w, ())))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return out


def grimp_modules(root: Path, layout: dict) -> set[str] | None:
    """Modules grimp finds for the layout's top-level packages (None: grimp not installed)."""
    try:
        import grimp
    except ImportError:
        return None
    tops = sorted({name.split(".")[0] for _, pkgs in layout.values() for name, _ in pkgs})
    sys.path[:0] = [str(root)] + [str(root / folder.rsplit("/", 1)[0])
                                  for _, pkgs in layout.values() for _, folder in pkgs
                                  if "/" in folder]
    return set(grimp.build_graph(*tops, cache_dir=None).modules)


def measure(root: Path) -> dict:
    name = detect(root)
    layout = LAYOUTS[name]
    known, found = edges(root, layout)
    layer = {m: layout[c][0] for m, (_, c) in known.items()}
    up = sorted((a, b) for a, b in found if layer[a] < layer[b])
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in found:
        graph[a].add(b)
    cycles = circles(known, graph)
    seen = grimp_modules(root, layout)
    unplaced = None if seen is None else sorted((a, b) for a, b in found if b not in seen)
    return {"layout": name, "modules": len(known), "imports": len(found), "up": up,
            "circles": cycles, "unplaceable": unplaced}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--show", type=int, default=8, help="offenders listed per kind")
    args = parser.parse_args(argv)
    r = measure(args.root)
    unplaced = r["unplaceable"]
    rows = [("imports that point up", r["up"]), ("circles", r["circles"]),
            ("imports a graph tool cannot place", unplaced)]
    print(f"layout {r['layout']}: {r['modules']} modules, {r['imports']} module imports")
    for label, items in rows:
        count = "n/a (grimp not installed)" if items is None else len(items)
        print(f"  {label:<36} {count}")
        for item in (items or [])[:args.show]:
            print("      " + (" -> ".join(item) if isinstance(item[0], str) and len(item) == 2
                              and label != "circles" else " <-> ".join(item)))
    print(json.dumps({"layout": r["layout"], "modules": r["modules"], "imports": r["imports"],
                      "up": len(r["up"]), "circles": len(r["circles"]),
                      "circle_modules": sum(len(c) for c in r["circles"]),
                      "unplaceable": None if unplaced is None else len(unplaced)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
