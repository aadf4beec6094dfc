"""The real LLaMA-2 SentencePiece vocabulary (32000 tokens) for tests, without committing it.

    path = real_vocab_path()          # .../vocab/<version>/ggml-vocab-llama-spm.gguf, or skip
    cases = real_vocab_cases()        # [(text, [ids]), ...] from llama.cpp's .inp/.out files

It ships in llama-cpp-python's sdist (vendor/llama.cpp/models/, MIT like llama.cpp; the
vocabulary itself is Meta's LLaMA-2 tokenizer, so it is cached, never committed). The sdist of
the version pinned in requirements/llama.txt is fetched once with pip (PyPI) and the files are
cached under the project's cache dir ($LLARA_EDGE_CACHE or ${XDG_CACHE_HOME:-~/.cache}/
llara-edge/vocab/<version>/). Offline, the tests that need it skip with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-spm.gguf.inp",
         "ggml-vocab-llama-spm.gguf.out")


def llama_version() -> str:
    for line in (ROOT / "requirements" / "llama.txt").read_text().splitlines():
        if line.startswith("llama-cpp-python=="):
            return line.split("==", 1)[1].strip()
    raise RuntimeError("requirements/llama.txt pins no llama-cpp-python version")


def cache_dir() -> Path:
    if os.environ.get("LLARA_EDGE_CACHE"):
        return Path(os.environ["LLARA_EDGE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llara-edge"


def _fetch(version: str, dest: Path) -> str | None:
    """Download the sdist and extract NAMES into dest; the reason on failure."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "-q", "-d", tmp, f"llama-cpp-python=={version}"]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as err:
            return f"pip download failed: {err}"
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if out.returncode or not sdists:
            return f"pip download of llama-cpp-python=={version} failed: {out.stderr[-300:]}"
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdists[0]) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if name in NAMES and "/vendor/llama.cpp/models/" in member.name:
                    part = dest / (name + ".part")
                    part.write_bytes(tar.extractfile(member).read())
                    os.replace(part, dest / name)  # atomic: never a truncated vocabulary
    missing = [n for n in NAMES if not (dest / n).exists()]
    return f"sdist lacks {missing}" if missing else None


def real_vocab_dir() -> Path:
    version = llama_version()
    dest = cache_dir() / "vocab" / version
    if not all((dest / n).exists() for n in NAMES):
        reason = _fetch(version, dest)
        if reason:
            pytest.skip(f"real LLaMA-2 vocabulary unavailable (offline?): {reason}")
    return dest


def real_vocab_path() -> Path:
    return real_vocab_dir() / NAMES[0]


def real_vocab_cases() -> list[tuple[str, list[int]]]:
    """llama.cpp's tokeniser test cases (test-tokenizer-0): the .inp texts are separated by
    '\\n__ggml_vocab_test__\\n', the .out holds one line of ids per text (tokenised without
    BOS, with sentencepiece's dummy-prefix space)."""
    d = real_vocab_dir()
    texts = (d / NAMES[1]).read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    texts = texts[:-1] if texts and texts[-1] == "" else texts  # the file ends with a separator
    lines = (d / NAMES[2]).read_text(encoding="utf-8").split("\n")[: len(texts)]
    if len(lines) != len(texts):
        raise RuntimeError(f"{d}: {len(texts)} texts but {len(lines)} id lines")
    return [(text, [int(t) for t in line.split()]) for text, line in zip(texts, lines, strict=True)]
