"""Reproduce models/tiny-llara: simulator data -> tokenizer -> tiny LLaVA -> checkpoint -> eval.

    MUJOCO_GL=egl python tools/train_tiny_policy.py --out models/tiny-llara --work runs/tiny

Stages (each timed; all on CPU, 2 threads):
1. data: the scripted expert's episodes at L1 rendered at 320x240 (`llara_edge.sim.datagen`,
   training seeds >= 1,000,000, no paraphrase line as in LLaRA's own training data), one
   datagen directory per (family, chunk), built by two worker processes;
2. tokenizer: a LLaMA-style sentencepiece model on the data's text + the format strings;
3. train: a LLaVA-1.5-architecture model (CLIP ViT, mlp2x_gelu, LLaMA) from random init on
   the multitask mix (D-inBC most, half of it with box-shifted text, training.augment; inBC,
   localisation / detection, LLARVA reach);
4. save: the ORIGINAL LLaVA layout (config.json, model.safetensors, tokenizer, separate
   CLIPVisionModel dir `clip/`) via llara_export.models.checkpoint.save_original, in fp16,
   and llara_text_formats.json (the answer forms of the training data's LLaRA answers and
   the prompt variant: llara_export.text_formats; the export copies them into the manifest);
5. eval: the saved checkpoint is loaded back (TorchPolicy) and run closed loop
   (sim.policy_agent.PolicyAgent, D-inBC prompts) on evaluation seeds 0..N-1;
6. MODEL_CARD.md and training_report.json are written next to the weights.

Everything is seeded: the same command on the same machine gives the same checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

REPO = Path(__file__).resolve().parents[1]
PICK_PLACE = ("visual_manipulation", "rotate", "scene_understanding")


@dataclass(frozen=True)
class DataRecipe:
    """Expert episodes per family (split into chunks so two workers share the work)."""

    episodes: dict[str, int] = field(default_factory=lambda: {
        "visual_manipulation": 500, "rotate": 100, "scene_understanding": 60, "reach": 40})
    chunks: dict[str, int] = field(default_factory=lambda: {"visual_manipulation": 2})
    width: int = 320
    height: int = 240
    paraphrase_prob: float = 0.0

    def jobs(self) -> list[tuple[str, int, int]]:
        """(family, datagen seed, episodes) per datagen directory, largest first."""
        out = []
        for fam, n in self.episodes.items():
            k = self.chunks.get(fam, 1)
            out += [(fam, c, n // k + (c < n % k)) for c in range(k)]
        return sorted(out, key=lambda j: -j[2] * (3 if j[0] == "scene_understanding" else 1))


@dataclass(frozen=True)
class EvalRecipe:
    gate_seeds: int = 50  # visual_manipulation L1
    table_seeds: int = 25  # every other pick-and-place family x level
    reach_seeds: int = 4  # reach (LLARVA) per level
    max_new_tokens: int = 128


def default_mix() -> dict[str, float]:
    """Sampling weights of the batch groups after the curriculum (synth/: procedural text-only
    D-inBC, llara_export.training.synthetic; text/: text-only variants of the simulator's D-inBC
    samples, llara_export.training.data)."""
    return {"synth/full": 3.0, "synth/short": 0.5, "text/dinbc/visual_manipulation": 0.5,
            "text/dinbc/rotate": 0.2, "text/localisation": 0.3,
            "dinbc/visual_manipulation": 1.5, "dinbc/visual_manipulation/shift": 3.0,
            "dinbc/rotate": 0.4, "dinbc/rotate/shift": 0.5,
            "dinbc/scene_understanding": 0.5, "inbc/visual_manipulation": 0.15,
            "inbc/rotate": 0.05, "inbc/scene_understanding": 0.05, "localisation": 0.3,
            "detection": 0.2, "llarva_action": 0.6, "llarva_trace": 0.2}


# The first steps only see short procedural D-inBC samples: random boxes make copying them
# into the answer the only way to lower the loss, and the copy circuit forms in ~200 steps
# (from random init the simulator's own samples alone do not get there in the time budget).
CURRICULUM_MIX = {"synth/short": 1.0}
SYNTH_SAMPLES = {"short": 12000, "full": 12000}
SHIFTED_PER_SAMPLE = 2  # box-shifted copies of each D-inBC visual_manipulation / rotate sample


def build_recipe(args: argparse.Namespace):
    """The committed recipe, with the command-line overrides."""
    from llara_export.models.llava import TinyConfig
    from llara_export.training.tokenizer import TokenizerConfig
    from llara_export.training.train import TrainConfig

    data = DataRecipe()
    if args.episodes_scale != 1.0:
        data = DataRecipe({f: max(2, round(n * args.episodes_scale))
                           for f, n in data.episodes.items()})
    model = TinyConfig(image_size=112, vision_hidden=128, vision_layers=3, vision_heads=4,
                       vision_intermediate=512, hidden=256, intermediate=768, layers=3,
                       heads=8, kv_heads=8)
    train = TrainConfig(steps=args.steps, batch_size=16, lr=2e-3, warmup_steps=50,
                        min_lr_ratio=0.1, mix=default_mix(), default_weight=0.0, seed=0,
                        curriculum_mix=CURRICULUM_MIX,
                        curriculum_steps=min(args.curriculum_steps, args.steps))
    evalr = EvalRecipe(args.gate_seeds, args.table_seeds, args.reach_seeds)
    return data, TokenizerConfig(vocab_size=1024), model, train, evalr


def _datagen_job(job: tuple[str, int, int, str, dict]) -> tuple[str, dict]:
    from llara_edge.sim.datagen import DatagenConfig, generate

    fam, seed, n, out, recipe = job
    cfg = DatagenConfig(families=(fam,), episodes=n, seed=seed, width=recipe["width"],
                        height=recipe["height"], paraphrase_prob=recipe["paraphrase_prob"])
    return out, generate(cfg, Path(out), overwrite=True)


def stage_data(recipe: DataRecipe, work: Path, log) -> tuple[list[Path], dict]:
    """Run every datagen job (two workers); returns the directories and their summaries."""
    jobs = [(fam, seed, n, str(work / "data" / f"{fam}_{seed}"), asdict(recipe))
            for fam, seed, n in recipe.jobs()]
    summaries = {}
    with get_context("spawn").Pool(2) as pool:
        for out, summary in pool.imap_unordered(_datagen_job, jobs):
            summaries[Path(out).name] = {"counts": summary["counts"],
                                         "episodes": summary["episodes"]}
            log(f"  {Path(out).name}: {summary['counts']}")
    return [Path(j[3]) for j in jobs], summaries


def stage_tokenizer(dirs: list[Path], cfg, work: Path):
    from llara_export.training.tokenizer import corpus_texts, train_tokenizer

    records = [rec for d in dirs for name in ("llara.json", "llarva.json")
               for rec in json.loads((d / name).read_text())]
    return train_tokenizer(corpus_texts(records), work / "tokenizer", cfg)


def stage_train(dirs, tok, model_cfg, train_cfg, work: Path, log):
    from llara_export.models.llava import build_tiny
    from llara_export.training.augment import shifted_set
    from llara_export.training.data import (
        DataConfig,
        TrainingSet,
        answer_forms,
        load_records,
        text_localisation,
        text_only,
    )
    from llara_export.training.synthetic import SynthConfig, synthetic_set
    from llara_export.training.train import train

    t0 = time.perf_counter()
    records = load_records(dirs)
    dinbc = [r for r in records if r.group.startswith("dinbc/")]
    records += [text_only(r) for r in dinbc] + [t for r in dinbc for t in text_localisation(r)]
    records += shifted_set([r for r in dinbc if not r.group.endswith("scene_understanding")],
                           SHIFTED_PER_SAMPLE, train_cfg.seed)
    records += synthetic_set(SYNTH_SAMPLES["short"], train_cfg.seed, SynthConfig(short=True))
    records += synthetic_set(SYNTH_SAMPLES["full"], train_cfg.seed + 1, SynthConfig(short=False))
    dataset = TrainingSet.build(records, tok, DataConfig(model_cfg.image_size))
    log(f"  samples per group: {dataset.sizes()} ({time.perf_counter() - t0:.0f} s)")
    model = build_tiny(model_cfg, seed=train_cfg.seed)
    result = train(model, dataset, train_cfg, state_dir=work / "state", log=log)
    return model, dataset, result, answer_forms(records)


def stage_save(model, tok, model_cfg, out: Path, answer_forms: tuple[str, ...]) -> int:
    """fp16 weights in the original LLaVA layout and the text formats of the training data
    (D-inBC prompts write no scene block, detection answers end every line with "."); returns
    the directory size in bytes."""
    import torch

    from llara_edge.models.preprocess import PreprocessConfig
    from llara_export.models.checkpoint import save_original
    from llara_export.text_formats import write_text_formats

    save_original(model.to(torch.float16), tok, out,
                  preprocess=PreprocessConfig(image_size=model_cfg.image_size), overwrite=True)
    write_text_formats(out, answer_forms or None, "standard")
    model.to(torch.float32)
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def stage_eval(ckpt: Path, recipe: EvalRecipe, log) -> dict:
    """Closed-loop success of the saved checkpoint: {family: {level: [successes, seeds]}}."""
    from llara_edge.sim import SimConfig, TabletopEnv
    from llara_edge.sim.policy_agent import PolicyAgent
    from llara_edge.sim.rollout import run_episode
    from llara_export.torch_ref import PolicyConfig, TorchPolicy

    policy = TorchPolicy.load(ckpt, PolicyConfig(max_new_tokens=recipe.max_new_tokens))
    agent = PolicyAgent(policy)
    cells = [("visual_manipulation", "L1", recipe.gate_seeds)]
    cells += [(f, lv, recipe.table_seeds) for f in PICK_PLACE for lv in ("L1", "L2", "L3")
              if (f, lv) != ("visual_manipulation", "L1")]
    cells += [("reach", lv, recipe.reach_seeds) for lv in ("L1", "L2", "L3")]
    env = TabletopEnv(SimConfig(width=320, height=240))
    table: dict = {}
    errors: dict = {}
    try:
        for fam, lv, n in cells:
            t0 = time.perf_counter()
            res = [run_episode(env, agent, fam, lv, s) for s in range(n)]
            wins = sum(r.success for r in res)
            table.setdefault(fam, {})[lv] = [wins, n]
            errors.setdefault(fam, {})[lv] = sum(len(r.errors) for r in res)
            log(f"  {fam:<20} {lv}: {wins}/{n} ({time.perf_counter() - t0:.0f} s)")
    finally:
        env.close()
    return {"success": table, "failed_steps": errors, "example_answers": agent.answers[:3]}


def _cell(cell: list[int] | None) -> str:
    if not cell:
        return "-"
    wins, n = cell
    return f"{wins / n:.0%} ({wins}/{n})"


def _fmt_table(success: dict) -> str:
    rows = ["| family | L1 | L2 | L3 |", "|---|---|---|---|"]
    for fam, cells in success.items():
        rows.append(f"| {fam} | " + " | ".join(_cell(cells.get(lv)) for lv in
                                               ("L1", "L2", "L3")) + " |")
    return "\n".join(rows)


def _param_count(model) -> dict[str, int]:
    parts = {"vision_tower": model.vision_tower, "mm_projector": model.mm_projector,
             "llm": model.llm}
    return {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}


def _model_lines(r: dict) -> str:
    m, params = r["model"], r["params"]
    total = f"{sum(params.values()):,} (" + ", ".join(f"{k} {v:,}" for k, v in params.items())
    return "\n".join([
        "| part | size |", "|---|---|",
        f"| vision | CLIP ViT, {m['image_size']} px, patch {m['patch_size']} -> "
        f"{m['image_tokens']} image tokens, hidden {m['vision_hidden']}, "
        f"{m['vision_layers']} layers |",
        f"| projector | mlp2x_gelu {m['vision_hidden']} -> {m['hidden']} -> {m['hidden']} |",
        f"| LLM | LLaMA, hidden {m['hidden']}, intermediate {m['intermediate']}, "
        f"{m['layers']} layers, {m['heads']} heads, vocab {m['vocab_size']} |",
        f"| parameters | {total}) |"])


def _train_lines(t: dict) -> str:
    losses = {k: round(v, 4) for k, v in t["group_losses"].items()}
    return (f"{t['steps']} steps, batch {t['batch_size']}, AdamW (lr {t['lr']}, warmup "
            f"{t['warmup_steps']}, cosine to {t['min_lr_ratio']} x lr, weight decay "
            f"{t['weight_decay']}, clip {t['grad_clip']}), seed {t['seed']}. Curriculum: the "
            f"first {t['curriculum_steps']} steps draw batches from "
            f"{json.dumps(t['curriculum_mix'])}, the rest with the sampling weights "
            f"{json.dumps(t['mix'])}.\n"
            f"Samples per group: {json.dumps(t['samples'])}.\n"
            f"Final loss (mean of the last 50 steps): {t['final_loss']:.4f}; per group (last "
            f"200 steps): {json.dumps(losses)}. Training loop wall time {t['wall_s']:.0f} s.")


CARD = """# tiny-llara: a small LLaVA-1.5 policy trained in the llara-edge simulator

A LLaVA-1.5-architecture model (CLIP ViT -> mlp2x_gelu projector -> LLaMA) at toy scale,
trained from random initialisation on CPU on the simulator's scripted-expert data in LLaRA
format (D-inBC, inBC, localisation, detection) and LLARVA format (reach, joint control),
all tasks in this one model. It exists to exercise the runtime end to end: the same checkpoint
layout, tokenizer rules, preprocessing, conversation template and text formats as the
released LLaRA / LLARVA models.

## Files (original LLaVA layout, {size_mb:.1f} MB)
`config.json` (`LlavaLlamaForCausalLM`, `mm_vision_tower: "clip"`, select layer -2, patch
features, `mlp2x_gelu`, `image_aspect_ratio: pad`), `model.safetensors` (LLaMA + projector,
fp16), `tokenizer.model` (+ HF tokenizer files), `clip/` (a CLIPVisionModel directory with
its preprocessor config), `training_report.json` (recipe, loss curve, timings, evaluation),
`llara_text_formats.json` (what the training data wrote: LLaRA answers "numbered" with their
"Step k: " header, prompt variant "standard"; the export copies it into the manifest).

## Model
{model}

Tokenizer: sentencepiece BPE trained on the data's text and the format strings, LLaMA
layout (<unk> 0, <s> 1, </s> 2, split digits, byte fallback, no normalisation).
Conversation template vicuna_v1; loss on the answer tokens only (LLaVA's masking).

## Data
Scripted-expert episodes at level L1, rendered at 320x240, training seeds >= 1,000,000
(evaluation uses seeds 0..N-1), no paraphrase line (as LLaRA's own training data); episodes
per family: {episodes}.

## Training
{train}

## Measured closed-loop success
Greedy decoding of the saved checkpoint (fp16 weights loaded as fp32, torch reference
backend), D-inBC prompts with the oracle boxes of the objects named in the instruction
(`llara_edge.sim.policy_agent.PolicyAgent`), LLARVA prompts in the data generator's wording
(prompt variant "train") for reach; evaluation
seeds 0..N-1 of each cell, success rate (successes / seeds):

{table}

Gate of the reference policy (visual_manipulation L1 >= 80% over >= 50 seeds): {gate}.

## Wall time
Stages {timings} (seconds); the whole command, imports included, {total_min:.1f} min on
{machine}.

## Reproduce
```
{command}
```
"""


def _gate(success: dict) -> str:
    wins, n = success.get("visual_manipulation", {}).get("L1", [0, 0])
    ok = n >= 50 and wins >= 0.8 * n
    return f"{'PASSED' if ok else 'NOT MET'} ({wins}/{n})"


def write_card(out: Path, report: dict, command: str) -> None:
    """MODEL_CARD.md from the measured report."""
    ev = report.get("eval")
    text = CARD.format(
        size_mb=report["size_bytes"] / 1e6, model=_model_lines(report),
        episodes=json.dumps(report["recipe"]["data"]["episodes"]),
        train=_train_lines(report["train"]),
        table=_fmt_table(ev["success"]) if ev else "(evaluation skipped)",
        gate=_gate(ev["success"]) if ev else "not evaluated",
        timings=json.dumps(report["timings_s"]),
        total_min=report["wall_s_total"] / 60, machine=report["machine"],
        command=command)
    (out / "MODEL_CARD.md").write_text(text)


def _model_summary(cfg, model) -> dict:
    d = asdict(cfg)
    d.pop("spec", None)
    d["image_tokens"] = model.num_image_tokens
    return d


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "models" / "tiny-llara")
    p.add_argument("--work", type=Path, default=REPO / "runs" / "tiny-llara")
    p.add_argument("--steps", type=int, default=2800)
    p.add_argument("--curriculum-steps", type=int, default=400)
    p.add_argument("--episodes-scale", type=float, default=1.0, help="scale the episode counts")
    p.add_argument("--gate-seeds", type=int, default=50)
    p.add_argument("--table-seeds", type=int, default=10)
    p.add_argument("--reach-seeds", type=int, default=3)
    p.add_argument("--skip-eval", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(2)
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.0f}s] {msg}", flush=True)

    data, tok_cfg, model_cfg, train_cfg, eval_recipe = build_recipe(args)
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        timings[name] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()

    log(f"data: {data.episodes}")
    dirs, summaries = stage_data(data, args.work, log)
    lap("data")
    tok = stage_tokenizer(dirs, tok_cfg, args.work)
    model_cfg = type(model_cfg)(**{**asdict(model_cfg), "spec": model_cfg.spec,
                                   "vocab_size": tok.vocab_size})
    lap("tokenizer")
    log(f"train: {train_cfg.steps} steps, batch {train_cfg.batch_size}")
    model, dataset, result, forms = stage_train(dirs, tok, model_cfg, train_cfg, args.work,
                                                log)
    lap("train")
    size = stage_save(model, tok, model_cfg, args.out, forms)
    lap("save")
    report = {
        "recipe": {"data": asdict(data), "tokenizer": asdict(tok_cfg)},
        "datagen": summaries, "model": _model_summary(model_cfg, model),
        "params": _param_count(model), "size_bytes": size,
        "train": {**{k: v for k, v in asdict(train_cfg).items()},
                  "samples": dataset.sizes(), "final_loss": result.final_loss(),
                  "group_losses": result.group_losses(), "wall_s": round(result.wall_s, 1),
                  "loss_every_10": [round(float(sum(result.losses[i:i + 10]) / 10), 4)
                                    for i in range(0, len(result.losses), 10)]},
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
    }
    if not args.skip_eval:
        log("eval: the saved checkpoint, closed loop")
        report["eval"] = stage_eval(args.out, eval_recipe, log)
        lap("eval")
    report["timings_s"] = timings
    report["wall_s_total"] = round(time.perf_counter() - start, 1)
    command = "MUJOCO_GL=egl python tools/train_tiny_policy.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]))
    (args.out / "training_report.json").write_text(json.dumps(report, indent=1))
    write_card(args.out, report, command.strip())
    log(f"done: {json.dumps(timings)}; checkpoint {args.out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
