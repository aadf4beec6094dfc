"""Write random-weight LLaRA-7B-shaped checkpoints (7B widths, reduced depth), both layouts.

    python tools/make_7b_shaped.py OUT_DIR [--layout original|llava-hf] [--llm-layers 2]
        [--clip-layers 4] [--vocab-gguf PATH] [--seed 0] [--overwrite]

The vocabulary defaults to the real LLaMA-2 one cached by tests/real_vocab.py
(${XDG_CACHE_HOME:-~/.cache}/llara-edge/vocab/<llama-cpp-python version>/); see
export/llara_export/models/shaped.py for the shapes. Prints one JSON line: out, layout, seconds,
bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _default_vocab() -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.real_vocab import real_vocab_path

    return real_vocab_path()


def main(argv: list[str] | None = None) -> int:
    from llara_export.models.shaped import LAYOUTS, ShapedConfig, write_shaped

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--layout", choices=LAYOUTS, default="original")
    parser.add_argument("--llm-layers", type=int, default=2)
    parser.add_argument("--clip-layers", type=int, default=4)
    parser.add_argument("--vocab-gguf", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    cfg = ShapedConfig(layout=args.layout, llm_layers=args.llm_layers,
                       clip_layers=args.clip_layers, seed=args.seed)
    start = time.perf_counter()
    out = write_shaped(cfg, args.out, args.vocab_gguf or _default_vocab(), args.overwrite)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps({"out": str(out), "layout": cfg.layout, "llm_layers": cfg.llm_layers,
                      "clip_layers": cfg.clip_layers,
                      "seconds": round(time.perf_counter() - start, 1), "bytes": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
