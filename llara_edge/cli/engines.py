"""`llara-edge engines build|list|clean`: the TensorRT engines of an export, on the device.

    llara-edge engines build ARTIFACT [--cache DIR] [--precision fp16] [--plugin LIB.so]
    llara-edge engines list [--cache DIR]
    llara-edge engines clean [--cache DIR] [--dry-run]

build compiles the artifact's vision, embed and llm ONNX graphs (those present) with
export/trt_build.build_engine, which caches each plan under CACHE/<key>.plan, the key being
GPU name, compute capability, TensorRT version, ONNX sha256, precision and shape profile: a
second build reuses them. A sidecar CACHE/<key>.json records what each plan is, for `list`.
Where tensorrt is not importable, build prints why and exits 3 before touching anything.
--plugin sets LLARA_EDGE_TRT_PLUGIN (the fused-projector plugin library) for the build.
The cache defaults to RuntimeConfig.engine_cache_dir, where the trt backend looks.
UNVERIFIED on hardware: no GPU or tensorrt on the development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROLES = ("vision", "embed", "llm")  # what the trt backend loads (backends/trt.py)
NO_TENSORRT_EXIT = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llara_edge.runtime.config import RuntimeConfig

    default_cache = RuntimeConfig.__dataclass_fields__["engine_cache_dir"].default
    parser.add_argument("action", choices=("build", "list", "clean"))
    parser.add_argument("artifact", type=Path, nargs="?", help="export directory (build)")
    parser.add_argument("--cache", type=Path, default=default_cache, help="engine cache dir")
    parser.add_argument("--precision", default="fp16", choices=("fp16",),
                        help="int8 needs calibration frames: use trt_build.build_engine")
    parser.add_argument("--frame-size", default="640x480", help="camera WxH the profile tunes for")
    parser.add_argument("--max-context", type=int, default=2048, help="token profile maximum")
    parser.add_argument("--plugin", type=Path, help="fused-projector plugin library (.so)")
    parser.add_argument("--dry-run", action="store_true", help="clean: only list what would go")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _build(args) -> int:
    from llara_edge.backends.trt_build import build_engine, tensorrt_status
    from llara_edge.errors import ConfigError
    from llara_edge.runtime.artifact import Artifact

    status = tensorrt_status()
    if not status["available"]:
        print(f"engines: cannot build: {status['reason']}; nothing built, {args.cache} "
              "untouched (on a Jetson: JetPack's python3-libnvinfer and a venv made with "
              "--system-site-packages, see docs/jetson.md)", file=sys.stderr)
        return NO_TENSORRT_EXIT
    if args.artifact is None:
        raise ConfigError("engines build needs the ARTIFACT directory")
    if args.plugin:
        if not args.plugin.is_file():
            raise ConfigError(f"no plugin library at {args.plugin}")
        os.environ["LLARA_EDGE_TRT_PLUGIN"] = str(args.plugin.resolve())
    width, height = (int(v) for v in args.frame_size.lower().split("x"))
    art = Artifact.open(args.artifact)
    for role in (r for r in ROLES if art.has_onnx(r)):
        t0 = time.perf_counter()
        onnx = art.onnx(role)
        plan = build_engine(onnx, args.cache, args.precision, frame_hw=(height, width),
                            max_context=args.max_context)
        seconds = time.perf_counter() - t0
        _write_json(plan.with_suffix(".json"), {
            "role": role, "onnx": onnx.name, "onnx_sha256": art.manifest["files"][onnx.name]
            ["sha256"], "precision": args.precision, "tensorrt": status["version"],
            "artifact": str(args.artifact.resolve()), "plugin": os.environ.get(
                "LLARA_EDGE_TRT_PLUGIN"), "built": time.strftime("%Y-%m-%dT%H:%M:%S")})
        print(f"engines: {role:<7} {plan} ({plan.stat().st_size / 2**20:.1f} MiB, "
              f"{seconds:.1f} s incl. cache check)")
    return 0


def _plans(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.plan")) if cache.is_dir() else []


def _list(args) -> int:
    plans = _plans(args.cache)
    print(f"engines: {len(plans)} plan(s) in {args.cache}")
    for plan in plans:
        meta_path = plan.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        print(f"  {plan.stem}  {plan.stat().st_size / 2**20:8.1f} MiB  "
              f"{meta.get('role', '?'):<7} {meta.get('precision', '?'):<5} "
              f"trt {meta.get('tensorrt', '?')}  {meta.get('onnx', '?')} "
              f"{str(meta.get('onnx_sha256', ''))[:12]}  {meta.get('built', '')}")
    return 0


def _clean(args) -> int:
    plans = _plans(args.cache)
    extras = [p.with_suffix(s) for p in plans for s in (".json", ".calib")]
    doomed = plans + [p for p in extras if p.exists()]
    size = sum(p.stat().st_size for p in doomed)
    verb = "would remove" if args.dry_run else "removed"
    if not args.dry_run:
        for path in doomed:
            path.unlink()
    print(f"engines: {verb} {len(plans)} plan(s), {size / 2**20:.1f} MiB from {args.cache}")
    return 0


ACTIONS = {"build": _build, "list": _list, "clean": _clean}


def run(args: argparse.Namespace) -> int:
    return ACTIONS[args.action](args)
