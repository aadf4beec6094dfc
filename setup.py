"""Package layout: the repository's top-level folders installed under the `llara_edge` namespace.

`kernels/` -> `llara_edge.kernels`, `export/` -> `llara_edge.export`, and so on, so an installed
llara-edge never shadows (or is shadowed by) another distribution's top-level `kernels`.
Metadata lives in pyproject.toml; only the folder mapping is computed here.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "llara_edge": "llara_edge",
    "llara_edge.export": "export",
    "llara_edge.kernels": "kernels",
    "llara_edge.hw_drivers": "hw_drivers",
    "llara_edge.benchmarks": "benchmarks",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in FOLDERS.items():
        package_dir[name] = folder
        packages.append(name)
        for sub in find_packages(folder):
            packages.append(f"{name}.{sub}")
    return sorted(set(packages)), package_dir


PACKAGES, PACKAGE_DIR = _packages()
setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
