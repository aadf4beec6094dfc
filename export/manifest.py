"""manifest.json of an export directory: what was exported, from what, and every file's hash.

Contract:
    sha256_file(path) -> str
    file_entries(root, names) -> {name: {"sha256": str, "size": int}}
    source_hash(paths) -> str                  # one sha256 over the source files' hashes
    write_manifest(root, manifest) -> Path     # atomic: tmp + fsync + rename, written last
    read_manifest(root) -> (dict, Path)        # version and shape checked (manifest_schema)
    load_manifest(root) -> dict                # ArtifactError unless every hash and size match
    validate(manifest, path)                   # ArtifactError naming every wrong-shaped field

The runtime accepts an export directory only through load_manifest: a directory without a
manifest (an interrupted export), with a missing, truncated or altered file, or with an
unknown manifest version, or a manifest of the wrong shape (`"files": 5`, no `files`, an entry
without sha256, an unknown key) is refused with an ArtifactError naming the file and field.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from llara_edge.errors import ArtifactError
from llara_edge.export.manifest_schema import problems

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_CHUNK = 1 << 20  # bytes read per hash update
_SHOWN = 10  # problems named in one error (a manifest may list thousands of files)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_CHUNK):
                digest.update(block)
    except OSError as err:
        raise ArtifactError(f"cannot read {path}: {err}") from err
    return digest.hexdigest()


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
    """Write root/manifest.json atomically (tmp file, fsync, rename), after checking its shape
    (ArtifactError naming the field: an exporter never writes what readers refuse)."""
    root = Path(root)
    final = root / MANIFEST_NAME
    tmp = root / f".{MANIFEST_NAME}.tmp"
    manifest = {"manifest_version": MANIFEST_VERSION, **manifest}
    validate(manifest, final)  # what is written must read back (manifest_schema)
    data = json.dumps(manifest, indent=2)
    try:
        with open(tmp, "w") as fh:
            fh.write(data + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"cannot write {final}: {err}") from err
    return final


def read_manifest(root: str | Path) -> tuple[dict, Path]:
    """(manifest, its path) of an export directory, version- and shape-checked
    (manifest_schema: any wrong shape is an ArtifactError naming every bad field); the
    files themselves are not checked yet."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(f"not an export directory (no {MANIFEST_NAME}): {root}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(f"unreadable manifest {path}: {err}") from err
    version = manifest.get("manifest_version") if isinstance(manifest, dict) else None
    if isinstance(manifest, dict) and version != MANIFEST_VERSION:
        raise ArtifactError(f"unsupported manifest version {version!r} in {path}")
    validate(manifest, path)
    return manifest, path


def validate(manifest, path: str | Path = MANIFEST_NAME) -> None:
    """ArtifactError naming every field of the wrong shape (one line, at most _SHOWN)."""
    found = problems(manifest)
    if not found:
        return
    shown = found[:_SHOWN] + ([f"... and {len(found) - _SHOWN} more"]
                              if len(found) > _SHOWN else [])
    head = f"{path}: " if len(found) == 1 else f"{path}: {len(found)} problems: "
    raise ArtifactError(head + " | ".join(shown))


def check_file(target: Path, entry: dict) -> None:
    """Raise ArtifactError unless `target` exists with the size and sha256 of its entry."""
    if not target.is_file():
        raise ArtifactError(f"missing artifact file {target}")
    size = target.stat().st_size
    if size != entry.get("size"):
        raise ArtifactError(f"artifact file {target} is {size} bytes, the manifest says "
                            f"{entry.get('size')} (truncated or replaced)")
    if sha256_file(target) != entry.get("sha256"):
        raise ArtifactError(f"artifact file {target} does not match its sha256 in the "
                            "manifest (altered)")


def load_manifest(root: str | Path) -> dict:
    """The manifest of an export directory, after checking every listed file."""
    manifest, _ = read_manifest(root)
    for name, entry in manifest["files"].items():
        check_file(Path(root) / name, entry)
    return manifest
