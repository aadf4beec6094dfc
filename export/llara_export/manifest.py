"""manifest.json of an export directory, as the export writes it (written last, atomically).

Contract:
    file_entries(root, names) -> {name: {"sha256": str, "size": int}}
    source_hash(paths) -> str                  # one sha256 over the source files' hashes
    write_manifest(root, manifest) -> Path     # atomic: tmp + fsync + rename, written last;
                                               # refused (ArtifactError) unless readers accept
                                               # its shape (llara_edge/runtime/manifest_schema.py)
Reading and checking (read_manifest, load_manifest, check_file, sha256_file) are the
runtime's (llara_edge.runtime.manifest), re-exported here for the export's callers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from llara_edge.errors import ArtifactError
from llara_edge.robot.toml_io import write_atomic
from llara_edge.runtime.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    check_file,
    load_manifest,
    read_manifest,
    sha256_file,
    validate,
)

__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "check_file", "file_entries", "load_manifest",
           "read_manifest", "sha256_file", "source_hash", "write_manifest"]


def file_entries(root: str | Path, names: Iterable[str]) -> dict[str, dict]:
    """Hash and size of each file (paths relative to root)."""
    root = Path(root)
    return {name: {"sha256": sha256_file(root / name), "size": (root / name).stat().st_size}
            for name in sorted(names)}


def source_hash(paths: Iterable[str | Path]) -> str:
    """sha256 over "name sha256" lines of the source files, in name order."""
    lines = sorted(f"{Path(p).name} {sha256_file(p)}" for p in paths)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def write_manifest(root: str | Path, manifest: dict) -> Path:
    """Write root/manifest.json atomically (robot.toml_io.write_atomic: tmp file, fsync,
    rename)."""
    final = Path(root) / MANIFEST_NAME
    manifest = {"manifest_version": MANIFEST_VERSION, **manifest}
    validate(manifest, final)  # what is written must read back
    try:
        return write_atomic(final, json.dumps(manifest, indent=2) + "\n")
    except OSError as err:
        raise ArtifactError(f"cannot write {final}: {err}") from err
