"""Load LLaVA-1.5 checkpoints (original LLaVA and llava-hf layouts); save the original layout.

Contract:
    load_checkpoint(path, clip_dir=None, dtype=torch.float32, compact=False)
        -> (model, tokenizer, info)
        model: LlavaPolicyModel in eval mode; info: LoadInfo; tokenizer: the checkpoint's
        (models/tokenizer.tokenizer_from_dir: tokenizer.model, else tokenizer.json)
        compact=True keeps the LLM's 16-bit matrices as stored and computes in `dtype`
        (models/compact.py: exact, about half the memory of an fp32 load for a 7B model)
    save_original(model, tokenizer, out_dir, clip_subdir="clip", preprocess=None,
                  max_shard_bytes=None, overwrite=False) -> Path
        writes out_dir/{config.json, model*.safetensors, tokenizer files, ...} and the CLIP
        tower as its own CLIPVisionModel directory out_dir/<clip_subdir>/ (config.json,
        model.safetensors with `vision_model.*` keys, preprocessor_config.json);
        config.json's mm_vision_tower is the relative name <clip_subdir>. All files are
        written to a temporary sibling directory first and renamed into place.

Layouts (FORMATS.md §1), chosen by config.json `architectures` through LAYOUTS:
- "LlavaLlamaForCausalLM" (original): LLaMA keys `model.*` / `lm_head.*`, projector
  `model.mm_projector.*`; `model.vision_tower.*` keys, if any, are ignored (LLaVA's builder
  re-loads the tower from mm_vision_tower too). The CLIP directory is `clip_dir` (the CLI's
  --clip), else mm_vision_tower relative to the checkpoint, else as given, else the local HF
  cache (no network). A full CLIPModel directory works: only `vision_model.*` is used.
- "LlavaForConditionalGeneration" (llava-hf): old keys `language_model.model.*`,
  `language_model.lm_head.*`, `vision_tower.*`, `multi_modal_projector.*`, or newer
  `model.language_model.*`, `lm_head.*`, `model.vision_tower.*`, `model.multi_modal_projector.*`;
  tower keys with or without `vision_model.`. The policies in scope were trained with
  `image_aspect_ratio=pad`, so info.preprocess pads for this layout too.
Weights: model.safetensors(.index.json) shards, else pytorch_model*.bin (.index.json) read
ONLY with torch.load(weights_only=True). Every problem is an ArtifactError naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import CLIPVisionConfig, LlamaConfig

from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.models.preprocess import PreprocessConfig, load_processor_config
from llara_export.models import weights_io as wio
from llara_export.models.hf_tokenizer import read_json_object
from llara_export.models.llava import LlavaPolicyModel, MultimodalSpec, projector_depth
from llara_export.models.tokenizer import TOKENIZER_FILES, ExportTokenizer, tokenizer_from_dir

ORIGINAL_ARCH = "LlavaLlamaForCausalLM"
HF_ARCH = "LlavaForConditionalGeneration"
# LLaVA image_aspect_ratio -> PreprocessConfig.aspect_ratio (None/"square": processor only).
ASPECT_FROM_LLAVA = {"pad": "pad", "square": "crop", None: "crop"}
ASPECT_TO_LLAVA = {"pad": "pad", "crop": "square"}
# llava-hf vision_feature_select_strategy -> LLaVA mm_vision_select_feature
SELECT_FROM_HF = {"default": "patch", "full": "cls_patch"}
# how to name the CLIP directory (the export CLI's flag; load_checkpoint's argument)
CLIP_HINT = "pass --clip DIR (load_checkpoint(clip_dir=DIR) in Python)"
# config keys that are not LlamaConfig fields (bookkeeping or multimodal)
_NOT_LLAMA = ("architectures", "model_type", "transformers_version", "_name_or_path",
              "auto_map", "torch_dtype", "dtype", "text_config", "vision_config")
# llava-hf key prefix -> (part, prefix inside that part); first match wins.
HF_PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("language_model.lm_head.", "llm", "lm_head."),
    ("language_model.model.", "llm", "model."),
    ("model.language_model.", "llm", "model."),
    ("lm_head.", "llm", "lm_head."),
    ("model.vision_tower.", "tower", ""),
    ("vision_tower.", "tower", ""),
    ("model.multi_modal_projector.", "proj", ""),
    ("multi_modal_projector.", "proj", ""),
)
HF_PROJECTOR_NAMES = {"linear_1.": "0.", "linear_2.": "2."}
MAIN_TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")


@dataclass
class LoadInfo:
    """What was loaded and how the runtime must feed it."""

    layout: str  # "original" | "llava-hf"
    path: Path
    clip_dir: Path | None  # separate CLIP directory (original layout)
    spec: MultimodalSpec
    preprocess: PreprocessConfig
    dtype: torch.dtype
    weight_files: tuple[Path, ...]
    ignored_keys: tuple[str, ...] = ()
    image_token_index: int | None = None  # llava-hf's in-vocabulary <image> id


def _llama_config(cfg: dict, where: Path) -> LlamaConfig:
    kwargs = {k: v for k, v in cfg.items() if k not in _NOT_LLAMA and not k.startswith("mm_")}
    try:
        return LlamaConfig(**kwargs)
    except (TypeError, ValueError) as err:
        raise ArtifactError(f"invalid LLaMA config in {where}: {err}") from err


def _clip_config(cfg: dict, where: Path) -> CLIPVisionConfig:
    """CLIPVisionConfig from a CLIPVisionModel config or a full CLIPModel config."""
    if cfg.get("model_type") == "clip":
        cfg = cfg.get("vision_config") or {}
    kind = cfg.get("model_type", "clip_vision_model")
    if kind != "clip_vision_model":
        raise ArtifactError(f"unsupported vision tower type {kind!r} in {where}")
    kwargs = {k: v for k, v in cfg.items() if k not in _NOT_LLAMA}
    try:
        return CLIPVisionConfig(**kwargs)
    except (TypeError, ValueError) as err:
        raise ArtifactError(f"invalid CLIP vision config in {where}: {err}") from err


def _spec(select_layer: object, select_feature: object, projector: object, where: Path):
    try:
        return MultimodalSpec(select_layer, select_feature, projector)  # type: ignore[arg-type]
    except ConfigError as err:
        raise ArtifactError(f"{err} (in {where})") from err


def _hf_cache_dir(repo_id: str) -> Path | None:
    """A CLIP model already in the local Hugging Face cache (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, not a repo id, hub library missing: no candidate
        return None


def resolve_clip_dir(ckpt: Path, tower: object, clip_dir: str | Path | None) -> Path:
    """The CLIP directory to use (see module docstring); ArtifactError when none has config.json."""
    if clip_dir is not None:
        candidates = [Path(clip_dir)]
    elif isinstance(tower, str) and tower:
        candidates = [ckpt / tower, Path(tower).expanduser()]
        cached = _hf_cache_dir(tower)
        candidates += [cached] if cached else []
    else:
        raise ArtifactError(
            f"missing CLIP directory: {ckpt / 'config.json'} has no mm_vision_tower; {CLIP_HINT}"
        )
    for cand in candidates:
        if (cand / "config.json").is_file():
            return cand
    looked = ", ".join(str(c) for c in candidates)
    raise ArtifactError(
        f"missing CLIP directory for vision tower {tower!r}: no config.json in {looked}; "
        f"{CLIP_HINT}, a local CLIPVisionModel directory"
    )


def _tower_state(raw: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Vision-tower tensors with the `vision_model.` prefix removed; other keys are ignored."""
    tower, ignored = {}, []
    for key, value in raw.items():
        if key.startswith("vision_model."):
            tower[key[len("vision_model.") :]] = value
        elif key.split(".", 1)[0] in ("embeddings", "pre_layrnorm", "encoder", "post_layernorm"):
            tower[key] = value
        else:
            ignored.append(key)  # text_model.*, visual_projection, logit_scale of a CLIPModel
    return tower, ignored


def _check_widths(
    proj: dict[str, torch.Tensor], spec: MultimodalSpec, clip_hidden: int, llm_hidden: int,
    where: Path,
) -> None:
    """Projector input = CLIP hidden and output = LLM hidden, with messages naming the cause."""
    linear = spec.projector_type == "linear"
    first = "weight" if linear else "0.weight"
    last = first if linear else f"{2 * (projector_depth(spec.projector_type) - 1)}.weight"
    if first not in proj or last not in proj:
        raise ArtifactError(
            f"missing weights: projector {spec.projector_type} tensor {first!r} not in {where}"
        )
    in_w, out_w = proj[first].shape[1], proj[last].shape[0]
    if in_w != clip_hidden:
        raise ArtifactError(
            f"mismatched hidden sizes in {where}: projector input {in_w} "
            f"!= CLIP hidden {clip_hidden}"
        )
    if out_w != llm_hidden:
        raise ArtifactError(
            f"mismatched hidden sizes in {where}: projector output {out_w} "
            f"!= LLM hidden {llm_hidden}"
        )


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _no_init() -> contextlib.AbstractContextManager:
    """Skip random initialisation when transformers offers it (weights are loaded next)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


def _load_part(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, where: Path):
    own = module.state_dict()
    if any(k.startswith("vision_model.") for k in own):  # transformers 4.x CLIPVisionModel
        state = {f"vision_model.{k}": v for k, v in state.items()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ArtifactError(
            f"{'missing' if missing else 'unexpected'} weights for the {what} in {where}: "
            f"{len(missing)} missing {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}"
        )
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise ArtifactError(
            f"mismatched shapes for the {what} in {where}: {k} is {tuple(state[k].shape)}, "
            f"config says {tuple(own[k].shape)} ({len(bad)} tensors differ)"
        )
    # assign: the loaded tensors become the parameters (no second full-size copy; the
    # uninitialised parameters of _no_init were never touched, so they cost no memory)
    module.load_state_dict(state, strict=True, assign=True)


def _assemble(
    clip_cfg: CLIPVisionConfig, llama_cfg: LlamaConfig, spec: MultimodalSpec,
    parts: dict[str, dict[str, torch.Tensor]], dtype: torch.dtype, where: Path,
) -> LlavaPolicyModel:
    """Build the model without random init and load the three parts strictly."""
    _check_widths(parts["proj"], spec, clip_cfg.hidden_size, llama_cfg.hidden_size, where)
    llm = parts["llm"]
    if "lm_head.weight" not in llm and llama_cfg.tie_word_embeddings:
        llm["lm_head.weight"] = llm.get("model.embed_tokens.weight")
    with _default_dtype(dtype), _no_init():
        model = LlavaPolicyModel(clip_cfg, llama_cfg, spec)
    _load_part(model.vision_tower, parts["tower"], "CLIP vision tower", where)
    _load_part(model.mm_projector, parts["proj"], "projector", where)
    _load_part(model.llm, llm, "LLaMA language model", where)
    # built under the default dtype: no model.to(dtype), which would also round fp32 buffers
    # such as RoPE's inv_freq (transformers' from_pretrained keeps them fp32 too)
    return model.eval()


def _load_original(path: Path, cfg: dict, clip_dir, dtype,
                   read_dtype) -> tuple[LlavaPolicyModel, LoadInfo]:
    where = path / "config.json"
    if cfg.get("mm_use_im_start_end"):
        raise ArtifactError(f"unsupported: mm_use_im_start_end=true in {where}")
    aspect = cfg.get("image_aspect_ratio")
    if aspect not in ASPECT_FROM_LLAVA:
        raise ArtifactError(f"unsupported image_aspect_ratio {aspect!r} in {where}")
    spec = _spec(cfg.get("mm_vision_select_layer", -2), cfg.get("mm_vision_select_feature",
                 "patch"), cfg.get("mm_projector_type", "linear"), where)
    llama_cfg = _llama_config(cfg, where)
    clip_path = resolve_clip_dir(path, cfg.get("mm_vision_tower"), clip_dir)
    clip_cfg = _clip_config(read_json_object(clip_path / "config.json", "CLIP config"), clip_path)
    mm_hidden = cfg.get("mm_hidden_size", clip_cfg.hidden_size)
    if mm_hidden != clip_cfg.hidden_size:
        raise ArtifactError(
            f"mismatched hidden sizes: mm_hidden_size {mm_hidden} in {where} != CLIP "
            f"hidden_size {clip_cfg.hidden_size} in {clip_path / 'config.json'}"
        )
    raw, files = wio.read_weights(path, read_dtype)
    parts: dict[str, dict[str, torch.Tensor]] = {"llm": {}, "proj": {}}
    ignored = []
    for key, value in raw.items():
        if key.startswith("model.mm_projector."):
            parts["proj"][key[len("model.mm_projector.") :]] = value
        elif key.startswith("model.vision_tower.") or key.endswith("rotary_emb.inv_freq"):
            ignored.append(key)  # re-loaded from the CLIP dir / recomputed buffers
        else:
            parts["llm"][key] = value
    clip_raw, clip_files = wio.read_weights(clip_path, dtype)
    parts["tower"], clip_ignored = _tower_state(clip_raw)
    model = _assemble(clip_cfg, llama_cfg, spec, parts, dtype, path)
    info = LoadInfo(
        layout="original", path=path, clip_dir=clip_path, spec=spec,
        preprocess=load_processor_config(clip_path, clip_cfg.image_size, ASPECT_FROM_LLAVA[aspect]),
        dtype=dtype, weight_files=tuple(files) + tuple(clip_files),
        ignored_keys=tuple(ignored + clip_ignored),
    )
    return model, info


def _hf_target(key: str, where: Path) -> tuple[str, str]:
    """(part, name inside the part) of a llava-hf key, by the first matching prefix."""
    for prefix, part, inner in HF_PREFIXES:
        if key.startswith(prefix):
            return part, inner + key[len(prefix) :]
    raise ArtifactError(f"unexpected weight {key!r} for a {HF_ARCH} checkpoint in {where}")


def _split_hf(raw: dict[str, torch.Tensor], where: Path) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {"llm": {}, "tower": {}, "proj": {}}
    for key, value in raw.items():
        part, name = _hf_target(key, where)
        if part == "proj":
            head = next((h for h in HF_PROJECTOR_NAMES if name.startswith(h)), None)
            if head is None:
                raise ArtifactError(f"unexpected projector weight {key!r} in {where}")
            name = HF_PROJECTOR_NAMES[head] + name[len(head) :]
        if not name.endswith("rotary_emb.inv_freq"):
            parts[part][name] = value
    parts["tower"], stray = _tower_state(parts["tower"])
    if stray:
        raise ArtifactError(f"unexpected vision tower weight {stray[0]!r} in {where}")
    return parts


def _load_hf(path: Path, cfg: dict, clip_dir, dtype,
             read_dtype) -> tuple[LlavaPolicyModel, LoadInfo]:
    where = path / "config.json"
    layer = cfg.get("vision_feature_layer", -2)
    strategy = cfg.get("vision_feature_select_strategy", "default")
    if not isinstance(layer, int) or strategy not in SELECT_FROM_HF:
        raise ArtifactError(
            f"unsupported vision_feature_layer {layer!r} / select strategy {strategy!r} in {where}"
        )
    act = cfg.get("projector_hidden_act", "gelu")
    if act != "gelu" or not cfg.get("multimodal_projector_bias", True):
        raise ArtifactError(
            f"unknown projector type in {where}: act {act!r}, bias "
            f"{cfg.get('multimodal_projector_bias', True)} (only exact GELU with bias = mlp2x_gelu)"
        )
    spec = _spec(layer, SELECT_FROM_HF[strategy], "mlp2x_gelu", where)
    llama_cfg = _llama_config(dict(cfg.get("text_config") or {}), where)
    clip_cfg = _clip_config(dict(cfg.get("vision_config") or {}), where)
    raw, files = wio.read_weights(path, read_dtype)
    model = _assemble(clip_cfg, llama_cfg, spec, _split_hf(raw, path), dtype, path)
    info = LoadInfo(
        layout="llava-hf", path=path, clip_dir=None, spec=spec,
        preprocess=load_processor_config(path, clip_cfg.image_size, "pad"),
        dtype=dtype, weight_files=tuple(files), image_token_index=cfg.get("image_token_index"),
    )
    return model, info


LAYOUTS: dict[str, Callable[..., tuple[LlavaPolicyModel, LoadInfo]]] = {
    ORIGINAL_ARCH: _load_original,
    HF_ARCH: _load_hf,
}


def load_checkpoint(
    path: str | Path, clip_dir: str | Path | None = None, dtype: torch.dtype = torch.float32,
    compact: bool = False,
) -> tuple[LlavaPolicyModel, ExportTokenizer, LoadInfo]:
    """Load a LLaVA-1.5 checkpoint directory of either layout (see module docstring)."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"checkpoint directory not found: {path}")
    cfg = read_json_object(path / "config.json", "model config")
    archs = cfg.get("architectures") or []
    arch = next((a for a in archs if a in LAYOUTS), None)
    if arch is None:
        raise ArtifactError(
            f"unknown architecture {archs!r} in {path / 'config.json'}; known: {sorted(LAYOUTS)}"
        )
    tokenizer = tokenizer_from_dir(path)
    # compact: the checkpoint's own dtypes are read and kept (no full-size fp32 copy)
    model, info = LAYOUTS[arch](path, cfg, clip_dir, dtype, None if compact else dtype)
    if compact:
        from llara_export.models.compact import compact as make_compact

        make_compact(model, dtype)
    if tokenizer.vocab_size > model.llama_config.vocab_size:
        raise ArtifactError(
            f"tokenizer in {path} has {tokenizer.vocab_size} pieces, more than the model's "
            f"vocab_size {model.llama_config.vocab_size}"
        )
    return model, tokenizer, info


# ----------------------------------------------------------------------------- saving


def _original_config(model: LlavaPolicyModel, clip_subdir: str, pre: PreprocessConfig) -> dict:
    llama = model.llama_config.to_dict()
    rope = llama.get("rope_parameters") or {}
    cfg = {k: v for k, v in llama.items() if k not in _NOT_LLAMA and k != "rope_parameters"}
    cfg.update(
        architectures=[ORIGINAL_ARCH], model_type="llava_llama",
        # transformers 4.x (LLaVA's own code) reads rope_theta / rope_scaling; 5.x rope_parameters
        rope_theta=rope.get("rope_theta", 10000.0), rope_scaling=None, rope_parameters=rope,
        mm_vision_tower=clip_subdir, mm_hidden_size=model.clip_config.hidden_size,
        mm_vision_select_layer=model.spec.select_layer,
        mm_vision_select_feature=model.spec.select_feature,
        mm_projector_type=model.spec.projector_type,
        image_aspect_ratio=ASPECT_TO_LLAVA[pre.aspect_ratio],
        mm_use_im_start_end=False, mm_use_im_patch_token=False, use_mm_proj=True,
        tokenizer_padding_side="right", torch_dtype=str(model.llm.dtype).replace("torch.", ""),
    )
    if rope.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = rope
    return cfg


def _clip_files(model: LlavaPolicyModel, pre: PreprocessConfig) -> tuple[dict, dict, dict]:
    clip_cfg = model.clip_config.to_dict()
    clip_cfg = {k: v for k, v in clip_cfg.items() if k not in ("transformers_version", "dtype")}
    clip_cfg.update(architectures=["CLIPVisionModel"], model_type="clip_vision_model")
    tower, _ = _tower_state(model.vision_tower.state_dict())
    tower = {f"vision_model.{k}": v for k, v in tower.items()}
    processor = {
        "image_processor_type": "CLIPImageProcessor", "do_resize": True, "resample": 3,
        "size": {"shortest_edge": pre.resize_edge}, "do_center_crop": True,
        "crop_size": {"height": pre.image_size, "width": pre.image_size},
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": list(pre.mean), "image_std": list(pre.std), "do_convert_rgb": True,
    }
    return clip_cfg, tower, processor


def _copy_tokenizer(tokenizer: ExportTokenizer | str | Path | Sequence, out: Path) -> None:
    """A loaded tokenizer saves itself; a directory gives its tokenizer.model (else
    tokenizer.json) and config files; a file list must hold one of the two."""
    if hasattr(tokenizer, "save"):
        tokenizer.save(out)
        return
    if isinstance(tokenizer, str | Path):
        src = Path(tokenizer)
        main = "tokenizer.model" if (src / "tokenizer.model").is_file() else "tokenizer.json"
        tokenizer = [src / main] if src.is_dir() else [src]
        tokenizer += [src / n for n in TOKENIZER_FILES[1:] if src.is_dir() and (src / n).is_file()]
    files = [Path(f) for f in tokenizer]
    if not any(f.name in MAIN_TOKENIZER_FILES and f.is_file() for f in files):
        names = [str(f) for f in files]
        raise ArtifactError(f"missing tokenizer: neither tokenizer.model nor tokenizer.json "
                            f"among {names}")
    for f in files:
        shutil.copyfile(f, out / f.name)


def save_original(
    model: LlavaPolicyModel,
    tokenizer: ExportTokenizer | str | Path | Sequence[str | Path],
    out_dir: str | Path,
    clip_subdir: str = "clip",
    preprocess: PreprocessConfig | None = None,
    max_shard_bytes: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `model` in the original LLaVA layout (see module docstring); returns out_dir."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty (pass overwrite=True)")
    pre = preprocess or PreprocessConfig(image_size=model.clip_config.image_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        (tmp / clip_subdir).mkdir(parents=True)
        _copy_tokenizer(tokenizer, tmp)
        llm = dict(model.llm.state_dict())
        proj = model.mm_projector.state_dict()
        llm.update({f"model.mm_projector.{k}": v for k, v in proj.items()})
        wio.write_safetensors(llm, tmp, max_shard_bytes)
        config = _original_config(model, clip_subdir, pre)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        clip_cfg, tower, processor = _clip_files(model, pre)
        wio.write_safetensors(tower, tmp / clip_subdir, None)
        (tmp / clip_subdir / "config.json").write_text(json.dumps(clip_cfg, indent=2))
        (tmp / clip_subdir / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
