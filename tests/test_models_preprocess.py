"""LLaRA / LLaVA image preprocessing against transformers' CLIPImageProcessor."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from llara_edge.errors import ConfigError
from llara_edge.models.preprocess import (
    CLIP_MEAN,
    PreprocessConfig,
    config_from_processor,
    expand2square,
    pad_color,
    preprocess_image,
)

SHAPES = [(100, 200), (240, 320), (57, 31), (112, 112), (480, 90), (3, 500)]


def _processor(size: int, crop: int):
    try:  # transformers >= 5 names the PIL implementation explicitly
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    return Processor(size={"shortest_edge": size}, crop_size={"height": crop, "width": crop},
                     do_convert_rgb=True)


def _llava_expand2square(pil_img, background_color):
    """Verbatim logic of haotian-liu/LLaVA llava/mm_utils.py expand2square."""
    width, height = pil_img.size
    if width == height:
        return pil_img
    if width > height:
        result = Image.new(pil_img.mode, (width, width), background_color)
        result.paste(pil_img, (0, (width - height) // 2))
        return result
    result = Image.new(pil_img.mode, (height, height), background_color)
    result.paste(pil_img, ((height - width) // 2, 0))
    return result


def test_pad_colour_is_llavas():
    assert pad_color() == (122, 116, 104)
    assert pad_color() == tuple(int(x * 255) for x in CLIP_MEAN)


@pytest.mark.parametrize("shape", SHAPES)
def test_expand2square_matches_llava(shape):
    rng = np.random.default_rng(sum(shape))
    img = Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    ours = np.asarray(expand2square(img, pad_color()))
    assert np.array_equal(ours, np.asarray(_llava_expand2square(img, pad_color())))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("aspect", ["pad", "crop"])
def test_matches_clip_image_processor(shape, aspect):
    rng = np.random.default_rng(sum(shape) + len(aspect))
    arr = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = preprocess_image(arr, PreprocessConfig(image_size=112, aspect_ratio=aspect))
    img = Image.fromarray(arr)
    if aspect == "pad":
        img = _llava_expand2square(img, pad_color())
    ref = np.asarray(_processor(112, 112)(img, return_tensors="np")["pixel_values"][0])
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (3, 112, 112)
    # float32 rounding only: the processor normalises in float32, we in float64
    assert np.abs(ours - ref).max() <= 1e-5


def test_resize_larger_than_crop_then_centre_crop():
    arr = np.random.default_rng(5).integers(0, 256, (90, 170, 3), dtype=np.uint8)
    cfg = config_from_processor({"size": {"shortest_edge": 64}, "crop_size": {"height": 56,
                                 "width": 56}}, aspect_ratio="crop")
    assert (cfg.image_size, cfg.resize_edge) == (56, 64)
    ref = _processor(64, 56)(Image.fromarray(arr), return_tensors="np")["pixel_values"][0]
    assert np.abs(preprocess_image(arr, cfg) - ref).max() <= 1e-5


def test_pil_and_array_inputs_agree_and_bad_inputs_raise():
    arr = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    cfg = PreprocessConfig(image_size=56)
    assert np.array_equal(preprocess_image(arr, cfg), preprocess_image(Image.fromarray(arr), cfg))
    rgba = Image.fromarray(np.dstack([arr, np.full((40, 60), 255, np.uint8)]), mode="RGBA")
    assert np.array_equal(preprocess_image(rgba, cfg), preprocess_image(arr, cfg))
    with pytest.raises(ConfigError, match="uint8"):
        preprocess_image(arr.astype(np.float32), cfg)
    with pytest.raises(ConfigError, match="aspect_ratio"):
        PreprocessConfig(aspect_ratio="anyres")


def test_padding_uses_mean_colour_so_pad_normalises_near_zero():
    arr = np.zeros((20, 80, 3), dtype=np.uint8)
    out = preprocess_image(arr, PreprocessConfig(image_size=56))
    top_row = out[:, 0, :]  # all padding
    expected = (np.array([122, 116, 104]) / 255 - np.array(CLIP_MEAN)) / np.array(
        (0.26862954, 0.26130258, 0.27577711))
    assert np.allclose(top_row, expected[:, None], atol=1e-6)


def test_module_does_not_import_torch():
    code = "import sys, llara_edge.models.preprocess; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
