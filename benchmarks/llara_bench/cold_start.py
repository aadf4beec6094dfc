"""Cold start (fresh process start -> first action) and peak RSS, measured in a subprocess.

Contract:
    measure_cold_start(spec, ctx, frame_rgb, user_text, steps=3, timeout_s=600) -> dict
        {"cold_start_s", "first_step_s", "peak_rss_mb", "steps", "ok", "error"?}
    python -m llara_bench.cold_start ARGS_JSON   # the child (internal)

The parent writes the frame (.npy) and the arguments to a temporary directory, takes the
time, starts `python -m llara_bench.cold_start` and reads the child's stdout; the
cold start is the parent's wall time from just before the process was spawned to the moment
the child's FIRST line arrives, which the child prints right after its first action was
parsed (interpreter start, imports, artifact verification, engine and grammar loading,
prefix prefill and one full step are all inside). The child then runs `steps` more steps and
prints one JSON line with its high-water RSS (ru_maxrss): the memory of that runner alone,
which one shared benchmark process could not separate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from llara_bench.specs import BenchContext

FIRST_ACTION = "FIRST-ACTION"


def measure_cold_start(spec: str, ctx: BenchContext, frame: np.ndarray, user_text: str,
                       steps: int = 3, timeout_s: float = 600) -> dict:
    """Spawn the child for `spec` and time it (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="llara-cold-") as tmp:
        np.save(Path(tmp) / "frame.npy", frame)
        args = {"spec": spec, "ctx": {k: str(v) if isinstance(v, Path) else v
                                      for k, v in asdict(ctx).items()},
                "frame": str(Path(tmp) / "frame.npy"), "text": user_text, "steps": steps}
        (Path(tmp) / "args.json").write_text(json.dumps(args))
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "llara_bench.cold_start",
                                 str(Path(tmp) / "args.json")], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        first = proc.stdout.readline()
        cold = time.perf_counter() - t0
        try:
            rest, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, err = proc.communicate()
    if not first.startswith(FIRST_ACTION) or proc.returncode != 0:
        tail = (err or "").strip().splitlines()[-3:]
        return {"ok": False, "error": f"child exit {proc.returncode}: {' | '.join(tail)}"}
    report = json.loads(rest.strip().splitlines()[-1])
    return {"ok": True, "cold_start_s": cold, **report}


def _child(path: str) -> int:
    args = json.loads(Path(path).read_text())
    t_start = time.perf_counter()
    from llara_bench.specs import make_runner
    from llara_bench.stats import peak_rss_mb

    raw = args["ctx"]
    ctx = BenchContext(Path(raw["artifact"]), Path(raw["checkpoint"]) if raw["checkpoint"]
                       else None, int(raw["threads"]), int(raw["max_new_tokens"]))
    frame = np.load(args["frame"])
    runner = make_runner(args["spec"], ctx)
    t_loaded = time.perf_counter()
    rec = runner.step(frame, args["text"])
    print(FIRST_ACTION, flush=True)
    for _ in range(int(args["steps"])):
        runner.step(frame, args["text"])
    runner.close()
    print(json.dumps({"load_s": t_loaded - t_start, "first_step_s": rec.total_s,
                      "first_ok": rec.action is not None, "steps": int(args["steps"]),
                      "peak_rss_mb": peak_rss_mb()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
