"""manifest.json of an export directory, as the runtime reads and checks it.

Contract:
    sha256_file(path) -> str
    read_manifest(root) -> (dict, path)        # version-checked; files not yet hashed
    check_file(path, entry)                    # ArtifactError unless size and sha256 match
    load_manifest(root) -> dict                # ArtifactError unless every hash and size match
    validate(manifest, path)                   # ArtifactError naming every wrong-shaped field
The writer (file_entries, source_hash, write_manifest, which validates before it writes) is
the export toolchain's (llara_export.manifest); both share this module's names, schema
(manifest_schema.py) and hash function.

The runtime accepts an export directory only through load_manifest: a directory without a
manifest (an interrupted export), with a missing, truncated or altered file, or with an
unknown manifest version, or a manifest of the wrong shape (`"files": 5`, no `files`, an entry
without sha256, an unknown key) is refused with an ArtifactError naming the file and field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from llara_edge.errors import ArtifactError
from llara_edge.runtime.manifest_schema import problems

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
