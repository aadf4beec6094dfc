"""One registry shape for every pluggable family (buses, cameras, LLM backends, vision engines).

Contract:
    BUSES = Registry("bus kind", builtin={"feetech": "llara_drivers.feetech.bus"},
                     group="llara_drivers.buses")
    @BUSES.register("feetech")          # class decorator; sets cls.<attr> = name when attr given
    class FeetechBus(MotorBus): ...
    BUSES.get("feetech") -> class       # a built-in name imports its module on first use, so
                                        # heavy SDKs (pyrealsense2, llama_cpp, tensorrt, torch)
                                        # load only for what a config asks for
    BUSES.names() -> sorted known names (registered, built in, and entry points)

Names may also come from other distributions through the entry-point `group` (e.g. the
simulator's cameras, declared by llara-edge, or the torch engines, declared by
llara-edge-export): an entry point's value is a module (imported: it registers its classes)
or a `module:Class` (registered under the entry point's name). An unknown name raises `error`
(DriverConfigError unless the owner passes its own) listing the known names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib import metadata

from llara_drivers.errors import DriverConfigError


class Registry:
    """name -> class, filled by `register`; built-in names map to the module registering them."""

    def __init__(self, what: str, builtin: dict[str, str], attr: str | None = None,
                 group: str | None = None, error: type[Exception] = DriverConfigError):
        self.what = what  # e.g. "camera kind", for error messages
        self.builtin = dict(builtin)
        self.attr = attr  # class attribute that receives the name (e.g. "kind"), or None
        self.group = group  # entry-point group other distributions add names through
        self.error = error
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def wrap(cls: type) -> type:
            if self.attr:
                setattr(cls, self.attr, name)
            self._classes[name] = cls
            return cls

        return wrap

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        if not self.group:
            return {}
        return {ep.name: ep for ep in metadata.entry_points(group=self.group)}

    def get(self, name: str) -> type:
        if name not in self._classes and name in self.builtin:
            importlib.import_module(self.builtin[name])
        if name not in self._classes and name in (eps := self._entry_points()):
            loaded = eps[name].load()
            if isinstance(loaded, type) and name not in self._classes:
                self.register(name)(loaded)
        try:
            return self._classes[name]
        except KeyError as err:
            raise self.error(f"unknown {self.what} {name!r}; known: {self.names()}") from err

    def names(self) -> list[str]:
        return sorted(set(self._classes) | set(self.builtin) | set(self._entry_points()))
