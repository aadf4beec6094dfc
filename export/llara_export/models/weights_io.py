"""Read and write checkpoint weight files safely (safetensors, or pickles with weights_only).

Contract:
    read_weights(directory, dtype=None) -> (state_dict, files)
        Looks, in order, for model.safetensors.index.json, pytorch_model.bin.index.json,
        model*.safetensors, pytorch_model*.bin. Floating tensors are cast to `dtype` (if given).
        Pickled files are read ONLY with torch.load(weights_only=True): a file that needs
        arbitrary objects is refused. Every failure is an ArtifactError naming the file.
    write_safetensors(state_dict, directory, max_shard_bytes=None) -> list[Path]
        model.safetensors, or HF-style shards model-0000i-of-0000n.safetensors plus
        model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map"}).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from llara_edge.errors import ArtifactError

SAFE_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"


def _first_line(err: BaseException) -> str:
    """The first non-empty line of an exception message, clipped (errors stay one line)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:200]


def _read_safetensors(path: Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Tensor by tensor, each cast to `dtype` as it is read: an fp16 file loaded as fp32
    never holds both copies of the whole file (a 7B checkpoint: 13.5 GB + 27 GB)."""
    try:
        if dtype is None:
            return load_file(str(path), device="cpu")
        out = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                t = f.get_tensor(key)
                out[key] = t.to(dtype) if t.is_floating_point() else t
        return out
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ArtifactError(
            f"corrupt or truncated safetensors file {path}: {_first_line(err)}"
        ) from err


def _read_bin(path: Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ArtifactError(
            f"refusing pickled checkpoint {path}: it holds objects that only load with "
            "weights_only=False (arbitrary code); convert it to safetensors with a trusted tool"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ArtifactError(
            f"corrupt or truncated pickled checkpoint {path}: {_first_line(err)}"
        ) from err
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ArtifactError(f"{path} is not a flat state dict of tensors")
    return {k: v.to(dtype) if dtype is not None and v.is_floating_point() else v
            for k, v in data.items()}


READERS = {".safetensors": _read_safetensors, ".bin": _read_bin}


def _index_files(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ArtifactError(f"unreadable weight index {index}: {_first_line(err)}") from err
    files = [index.parent / n for n in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ArtifactError(f"missing weights: shard {missing[0]} listed in {index} not found")
    return files


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a checkpoint directory, in the lookup order of the docstring."""
    for index in (SAFE_INDEX, BIN_INDEX):
        if (directory / index).is_file():
            return _index_files(directory / index)
    for pattern in ("model*.safetensors", "pytorch_model*.bin"):
        files = sorted(directory.glob(pattern))
        if files:
            return files
    raise ArtifactError(
        f"missing weights: no model*.safetensors or pytorch_model*.bin in {directory}"
    )


def read_weights(
    directory: str | Path, dtype: torch.dtype | None = None
) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """All tensors of a checkpoint directory (see module docstring)."""
    directory = Path(directory)
    files = weight_files(directory)
    state: dict[str, torch.Tensor] = {}
    for path in files:
        part = READERS[path.suffix](path, dtype)
        dup = next((k for k in part if k in state), None)
        if dup is not None:
            raise ArtifactError(f"weight {dup!r} appears twice in {directory} (again in {path})")
        state.update(part)
    return state, files


def _shards(state: dict[str, torch.Tensor], max_bytes: int | None) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in state.items():
        nbytes = value.numel() * value.element_size()
        if max_bytes is not None and shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    return shards


def write_safetensors(
    state: dict[str, torch.Tensor], directory: str | Path, max_shard_bytes: int | None = None
) -> list[Path]:
    """Write `state` as safetensors (sharded when over max_shard_bytes); returns the files."""
    directory = Path(directory)
    seen: set[int] = set()
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        t = value.detach().contiguous()
        if t.data_ptr() in seen:  # tied weights: safetensors refuses shared storage
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[key] = t
    shards = _shards(tensors, max_shard_bytes)
    if len(shards) == 1:
        path = directory / "model.safetensors"
        save_file(tensors, str(path), metadata={"format": "pt"})
        return [path]
    n = len(shards)
    paths = [directory / f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    weight_map = {}
    for path, shard in zip(paths, shards, strict=True):
        save_file(shard, str(path), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, path.name))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / SAFE_INDEX).write_text(json.dumps(index, indent=2))
    return paths
