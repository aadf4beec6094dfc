"""`llara-edge export CHECKPOINT --out DIR [--clip DIR] [--quant LIST] [--formats gguf,onnx]
[--compact] [--answer-forms numbered,unnumbered] [--prompt-variant NAME]`.

Writes one artifact directory (export/llara_export/pipeline.py; llama.cpp's own output goes to
OUT/export.log), draws a progress bar on stderr (export/llara_export/progress.py), prints the
parity table and, as the very last stdout line, one JSON object {"ok", "out", "seconds",
"files": {name: bytes}, "parity": [...], "stages": [...]}
(stages: wall seconds and peak RSS per export stage, export/llara_export/resources.py). Exit codes:
0 exported and parity passed; 1 parity gate failed (nothing published); 2 bad input (one `llara-edge
export: error: ...` line from the CLI entry point).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llara_edge.errors import ConfigError

HELP = "checkpoint -> GGUF + mmproj + ONNX, parity-gated"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="LLaVA checkpoint dir (either layout)")
    parser.add_argument("--out", type=Path, required=True, help="artifact directory to create")
    parser.add_argument("--clip", type=Path, help="CLIP vision tower dir (original layout)")
    parser.add_argument("--quant", default=None,
                        help="comma list of GGUF quantisations (default q8_0,q4_k_m when gguf "
                             "is exported); '' for f16 only")
    parser.add_argument("--formats", default="gguf,onnx",
                        help="comma list of artifact formats: gguf, onnx, onnx-vision (onnx "
                             "without embed/llm.onnx; default gguf,onnx)")
    parser.add_argument("--compact", action="store_true",
                        help="keep the LLM's fp16/bf16 weights as stored and compute the "
                             "reference in fp32 from them (exact; about half the memory: a "
                             "7B export on a 32 GB machine)")
    parser.add_argument("--frames", type=int, default=4, help="simulator frames for parity")
    parser.add_argument("--frame-size", default="320x240", help="parity camera WxH")
    parser.add_argument("--max-new-tokens", type=int, default=96,
                        help="greedy answer length in parity (a full LLaRA step is ~66)")
    parser.add_argument("--thresholds", type=Path, help="parity thresholds JSON")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of torch, llama.cpp and onnxruntime during the export")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export")
    parser.add_argument("--answer-forms", default=None,
                        help="comma list of the answer forms the checkpoint writes: numbered "
                             "(\"Step k: Pick up ...\"), unnumbered (\"Pick up ...\"); "
                             "recorded in the manifest, the runtime's default numbering "
                             "follows it (default: the checkpoint's llara_text_formats.json; "
                             "none recorded: the runtime accepts both)")
    parser.add_argument("--prompt-variant", default=None,
                        help="the prompt variant the checkpoint was trained on (llara: "
                             "standard, scene_no_final_period); default: the checkpoint's "
                             "llara_text_formats.json, else the format's default")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise ConfigError(f"--frame-size must be WxH, got {text!r}") from err
    return w, h


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def run(args: argparse.Namespace) -> int:
    from llara_export.parity import format_table
    from llara_export.pipeline import ExportConfig, count_steps, run_export
    from llara_export.progress import ProgressBar
    from llara_export.resources import format_stages

    formats = _items(args.formats)
    quant = args.quant if args.quant is not None else (
        "q8_0,q4_k_m" if "gguf" in formats else "")
    cfg = ExportConfig(
        checkpoint=args.checkpoint, out=args.out, clip_dir=args.clip, quants=_items(quant),
        parity_frames=args.frames, frame_size=_size(args.frame_size),
        max_new_tokens=args.max_new_tokens, thresholds=args.thresholds,
        overwrite=args.overwrite, threads=args.threads, formats=formats,
        compact=args.compact, prompt_variant=args.prompt_variant,
        answer_forms=None if args.answer_forms is None else _items(args.answer_forms),
    )
    bar = ProgressBar(count_steps(cfg), label="export", stream=sys.stderr)
    try:
        report = run_export(cfg, progress=bar)
    finally:
        bar.close()
    print(format_table(report.results))
    print(format_stages(report.stages))
    files = {k: v["size"] for k, v in report.manifest.get("files", {}).items()}
    if not report.ok:
        print(f"llara-edge export: parity gate failed; nothing written to {args.out}",
              file=sys.stderr)
    print(json.dumps({"ok": report.ok, "out": str(args.out), "seconds": round(report.seconds, 2),
                      "files": files, "parity": [r.to_dict() for r in report.results],
                      "stages": report.stages}))
    return 0 if report.ok else 1
