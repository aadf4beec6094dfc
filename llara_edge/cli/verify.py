"""`llara-edge verify ARTIFACT [--manifest-sha256 HEX]`: check an export directory's files.

Every file of the manifest must exist with its size and sha256 (llara_edge/runtime/manifest.py
load_manifest); with --manifest-sha256 the manifest itself must have that sha256 too (what
`llara-edge deploy` runs ON the device before installing a copy). One line on success, exit 0;
an ArtifactError (exit 2) naming the first bad file otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", type=Path, help="export directory (with manifest.json)")
    parser.add_argument("--manifest-sha256", help="expected sha256 of manifest.json itself")


def run(args: argparse.Namespace) -> int:
    from llara_edge.errors import ArtifactError
    from llara_edge.runtime.manifest import MANIFEST_NAME, load_manifest, sha256_file

    sha = sha256_file(args.artifact / MANIFEST_NAME) if \
        (args.artifact / MANIFEST_NAME).is_file() else None
    if args.manifest_sha256 and sha != args.manifest_sha256.lower():
        raise ArtifactError(f"{args.artifact}/{MANIFEST_NAME} has sha256 {sha}, expected "
                            f"{args.manifest_sha256} (not the manifest that was sent)")
    files = load_manifest(args.artifact)["files"]
    size = sum(int(e["size"]) for e in files.values())
    print(f"verify: ok: {len(files)} files, {size / 2**20:.1f} MiB, every sha256 matches "
          f"manifest {sha[:12]} ({args.artifact.resolve()})")
    return 0
