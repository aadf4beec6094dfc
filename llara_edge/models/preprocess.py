"""LLaVA-1.5 / LLaRA image preprocessing in NumPy + PIL (no torch: the runtime reuses it).

Contract:
    cfg = PreprocessConfig(image_size=336)            # CLIP ViT-L/14-336 defaults
    preprocess_image(image, cfg) -> np.ndarray float32 (3, crop, crop), channels RGB

`image` is a PIL image or an (H, W, 3) uint8 RGB array. With `aspect_ratio="pad"` (LLaRA,
LLARVA) the image is first padded to a square with the CLIP mean colour (122, 116, 104),
centred as LLaVA's `expand2square`; then, as transformers' CLIPImageProcessor: resize so the
shortest edge is `shortest_edge` (PIL bicubic, on uint8), centre crop to `crop_size`,
rescale by 1/255, normalise with `mean` / `std` (computed in float64, returned as float32).
`aspect_ratio="crop"` skips the padding (stock CLIP: resize + centre crop).

Sources: haotian-liu/LLaVA `llava/mm_utils.py` (expand2square, process_images),
transformers `image_processing_clip.py` / `image_transforms.py` (get_resize_output_image_size,
center_crop, rescale, normalize).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from llara_edge.errors import ArtifactError, ConfigError

# transformers image_utils OPENAI_CLIP_MEAN / OPENAI_CLIP_STD
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
ASPECT_RATIOS = ("pad", "crop")


def pad_color(mean: tuple[float, float, float] = CLIP_MEAN) -> tuple[int, int, int]:
    """LLaVA's background colour: tuple(int(x * 255) for x in image_mean) -> (122, 116, 104)."""
    r, g, b = (int(x * 255) for x in mean)
    return (r, g, b)


@dataclass(frozen=True)
class PreprocessConfig:
    """CLIPImageProcessor settings plus LLaVA's image_aspect_ratio."""

    image_size: int = 336  # crop size (square), the CLIP tower's input size
    shortest_edge: int | None = None  # resize target; None: image_size
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    aspect_ratio: str = "pad"

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ConfigError(f"image_size must be a positive int, got {self.image_size!r}")
        if self.shortest_edge is not None and self.shortest_edge < self.image_size:
            raise ConfigError(
                f"shortest_edge {self.shortest_edge} smaller than crop {self.image_size}"
            )
        if self.aspect_ratio not in ASPECT_RATIOS:
            raise ConfigError(
                f"unknown image_aspect_ratio {self.aspect_ratio!r}; known: {ASPECT_RATIOS}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(f"mean/std must be 3 values, std > 0: {self.mean}, {self.std}")

    @property
    def resize_edge(self) -> int:
        return self.shortest_edge if self.shortest_edge is not None else self.image_size

    def to_dict(self) -> dict:
        return {
            "image_size": self.image_size,
            "shortest_edge": self.resize_edge,
            "mean": list(self.mean),
            "std": list(self.std),
            "aspect_ratio": self.aspect_ratio,
        }


def _edge(value: object) -> int:
    """A size entry of preprocessor_config.json: an int or {"shortest_edge"|"height": int}."""
    if isinstance(value, Mapping):
        value = value.get("shortest_edge", value.get("height"))
    if not isinstance(value, int):
        raise ConfigError(f"unreadable size entry {value!r}")
    return value


def config_from_processor(
    processor: Mapping, aspect_ratio: str = "pad"
) -> PreprocessConfig:
    """PreprocessConfig from a CLIPImageProcessor dict (preprocessor_config.json)."""
    crop = _edge(processor.get("crop_size", 336))
    return PreprocessConfig(
        image_size=crop,
        shortest_edge=_edge(processor.get("size", crop)),
        mean=tuple(processor.get("image_mean", CLIP_MEAN)),
        std=tuple(processor.get("image_std", CLIP_STD)),
        aspect_ratio=aspect_ratio,
    )


def load_processor_config(
    directory: str | Path, image_size: int, aspect_ratio: str = "pad"
) -> PreprocessConfig:
    """From `directory/preprocessor_config.json` if present, else CLIP defaults at image_size."""
    path = Path(directory) / "preprocessor_config.json"
    if not path.is_file():
        return PreprocessConfig(image_size=image_size, aspect_ratio=aspect_ratio)
    try:
        return config_from_processor(json.loads(path.read_text()), aspect_ratio)
    except (ValueError, ConfigError) as err:
        raise ArtifactError(f"unreadable image processor config {path}: {err}") from err


def expand2square(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Pad to a square, image centred (LLaVA mm_utils.expand2square)."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    result = Image.new(image.mode, (side, side), background)
    result.paste(image, ((side - width) // 2, (side - height) // 2))
    return result


def _to_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ConfigError(f"expected an (H, W, 3) uint8 RGB image, got {arr.shape} {arr.dtype}")
    return Image.fromarray(arr, mode="RGB")


def resize_shortest_edge(image: Image.Image, edge: int) -> Image.Image:
    """Bicubic resize so that min(w, h) == edge; the long side is truncated as transformers does."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(edge * long / short)
    size = (edge, new_long) if width <= height else (new_long, edge)
    if size == (width, height):
        return image
    return image.resize(size, resample=Image.Resampling.BICUBIC)


def center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C), offsets floor((H - size) / 2) as transformers' center_crop."""
    height, width = arr.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    return arr[top : top + size, left : left + size]


def preprocess_image(
    image: Image.Image | np.ndarray, cfg: PreprocessConfig | None = None
) -> np.ndarray:
    """One RGB image -> CLIP pixel values, float32 (3, image_size, image_size)."""
    cfg = cfg or PreprocessConfig()
    pil = _to_pil(image)
    if cfg.aspect_ratio == "pad":
        pil = expand2square(pil, pad_color(cfg.mean))
    pil = resize_shortest_edge(pil, cfg.resize_edge)
    arr = center_crop(np.asarray(pil), cfg.image_size).astype(np.float64) / 255.0
    mean = np.asarray(cfg.mean, dtype=np.float64)
    std = np.asarray(cfg.std, dtype=np.float64)
    return np.ascontiguousarray(((arr - mean) / std).transpose(2, 0, 1), dtype=np.float32)
