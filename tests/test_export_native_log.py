"""llama.cpp's own output during the export goes to a log file (export/llara_export/native_log.py).

What is written inside the block at every level (Python's sys.stdout/sys.stderr, raw file
descriptors 1 and 2, C stdio still buffered when the block ends) lands in the log and never
on the terminal; the terminal is back afterwards, after an exception too; a failed
quantisation names llama.cpp's last lines in its error.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llara_edge.errors import ArtifactError
from llara_export.native_log import NativeLog

WORDS = ("py-out", "py-err", "fd1-raw", "fd2-raw", "c-printf")
# in a fresh interpreter without PYTHONUNBUFFERED (which makes C stdio unbuffered too): C's
# stdout buffers printf's line as it does when a user pipes the export's output
SCRIPT = """
import ctypes, os, sys
from llara_export.native_log import NativeLog
print("before", flush=True)
streams = (sys.stdout, sys.stderr)
with NativeLog(sys.argv[1], "quantise x") as native:
    print("py-out line")
    print("py-err line", file=sys.stderr)
    os.write(1, b"fd1-raw line\\n")
    os.write(2, b"fd2-raw line\\n")
    ctypes.CDLL(None).printf(b"c-printf line\\n")
assert (sys.stdout, sys.stderr) == streams
print("after", native.tail(1), flush=True)
os.write(2, b"fd2 after\\n")
ctypes.CDLL(None).fflush(None)
"""


def test_every_level_goes_to_the_log_and_the_terminal_comes_back(tmp_path):
    log = tmp_path / "export.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "before\nafter ['c-printf line']\n" and proc.stderr == "fd2 after\n"
    text = log.read_text()
    assert text.startswith("== quantise x ==\n") and all(w in text for w in WORDS), text


def test_restored_after_an_exception_and_appends(tmp_path, capfd):
    log = tmp_path / "export.log"
    with pytest.raises(RuntimeError), NativeLog(log, "first"):
        os.write(2, b"inside one\n")
        raise RuntimeError("boom")
    with NativeLog(log, "second") as native:
        os.write(2, b"inside two\n")
    os.write(2, b"outside\n")
    err = capfd.readouterr().err
    assert "outside" in err and "inside" not in err
    assert log.read_text() == "== first ==\ninside one\n== second ==\ninside two\n"
    assert native.tail(5) == ["inside two"]


def test_failed_quantisation_names_llama_cpp_and_keeps_the_terminal_clean(tmp_path, capfd):
    pytest.importorskip("llama_cpp")
    from llara_export.quantize import quantize_gguf

    bad = tmp_path / "llm-f16.gguf"
    bad.write_bytes(b"GGUF" + bytes(200))  # a header with version 0
    with pytest.raises(ArtifactError, match=r"failed \(code \d+\); llama\.cpp: .*bad GGUF "
                                            r"version") as err:
        quantize_gguf(bad, tmp_path / "llm-q8_0.gguf", "q8_0", 1, log=tmp_path / "export.log")
    assert "failed to load model" in str(err.value)
    out, errs = capfd.readouterr()
    assert "gguf_init" not in out + errs and not (tmp_path / "llm-q8_0.gguf").exists()
    assert "bad GGUF version" in (tmp_path / "export.log").read_text()
