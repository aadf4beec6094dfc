"""What a checkpoint's training data wrote, kept next to its weights for the export to record.

Contract:
    TEXT_FORMATS = "llara_text_formats.json"            # in the checkpoint directory
    write_text_formats(ckpt_dir, answer_forms=("numbered",), prompt_variant="standard")
    read_text_formats(ckpt_dir) -> dict                 # {} without the file
    manifest_entries(ckpt_dir, variants, answer_forms=None, prompt_variant=None) -> dict
        # the manifest keys "answer_forms" / "prompt_variant": the given values, else the
        # checkpoint's file, else nothing (the runtime then defaults to numbering "either"
        # and the format's default prompt); `variants`: the exported policy format's
        # prompt_variants (a format without any gets no prompt_variant from the file)

The file is {"answer_forms": [...], "prompt_variant": "..."}, both optional: answer_forms a
non-empty subset of formats.llara.ANSWER_FORMS ("numbered": "Step k: Pick up ...",
"unnumbered": "Pick up ..."), prompt_variant LLaRA's (formats.llara.PROMPT_VARIANTS, how a
prompt's scene blocks end; the export checks it against its policy format's). Training
(tools/train_tiny_policy.py, from llara_export.training.data.answer_forms over its records)
writes it; a released checkpoint has none, and its user may write one (or pass
`llara-edge export --answer-forms / --prompt-variant`). Strict: an unknown key or value is a
ConfigError naming the nearest valid one. Written atomically (robot.toml_io.write_atomic:
temporary file, fsync, rename).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from llara_edge.errors import ConfigError
from llara_edge.formats.llara import PROMPT_VARIANTS, check_answer_forms
from llara_edge.names import did_you_mean
from llara_edge.robot.toml_io import write_atomic

TEXT_FORMATS = "llara_text_formats.json"
KEYS = ("answer_forms", "prompt_variant")


def _given(answer_forms: Sequence[str] | None, prompt_variant: str | None) -> dict:
    """The entries passed as arguments (None: not given)."""
    return {k: v for k, v in (("answer_forms", answer_forms),
                              ("prompt_variant", prompt_variant)) if v is not None}


def _checked(entries: dict, where: str, variants: Sequence[str]) -> dict:
    unknown = [k for k in entries if k not in KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; "
                          f"{did_you_mean(unknown[0], KEYS)}")
    out = {}
    try:
        if "answer_forms" in entries:
            out["answer_forms"] = check_answer_forms(entries["answer_forms"])
        if "prompt_variant" in entries:
            variant = entries["prompt_variant"]
            if variant not in variants:
                raise ConfigError(f"unknown prompt variant {variant!r}; valid: "
                                  f"{', '.join(variants) or 'none'}")
            out["prompt_variant"] = variant
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err
    return out


def write_text_formats(ckpt_dir: str | Path, answer_forms: Sequence[str] | None = None,
                       prompt_variant: str | None = None) -> Path:
    """Write TEXT_FORMATS into `ckpt_dir` (only the entries given); returns its path."""
    path = Path(ckpt_dir) / TEXT_FORMATS
    entries = _checked(_given(answer_forms, prompt_variant), str(path), PROMPT_VARIANTS)
    return write_atomic(path, json.dumps(entries, indent=1) + "\n")


def read_text_formats(ckpt_dir: str | Path) -> dict:
    """The checked entries of `ckpt_dir`'s TEXT_FORMATS ({} without one)."""
    path = Path(ckpt_dir) / TEXT_FORMATS
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"unreadable {path}: {err}") from err
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(entries).__name__}")
    return _checked(entries, str(path), PROMPT_VARIANTS)


def manifest_entries(ckpt_dir: str | Path, variants: Sequence[str],
                     answer_forms: Sequence[str] | None = None,
                     prompt_variant: str | None = None) -> dict:
    """The manifest's "answer_forms" / "prompt_variant": given values over the checkpoint's."""
    recorded = read_text_formats(ckpt_dir)
    if not variants:  # the format has no prompt variants: LLaRA's does not apply
        recorded.pop("prompt_variant", None)
    recorded = _checked(recorded, f"{Path(ckpt_dir) / TEXT_FORMATS}", variants)
    return {**recorded, **_checked(_given(answer_forms, prompt_variant), "export", variants)}
