"""One registry shape for every pluggable family (buses, cameras, LLM backends, vision engines).

Contract:
    BUSES = Registry("bus kind", builtin={"feetech": "llara_edge.hw_drivers.feetech.bus"})
    @BUSES.register("feetech")          # class decorator; sets cls.<attr> = name when attr given
    class FeetechBus(MotorBus): ...
    BUSES.get("feetech") -> class       # a built-in name imports its module on first use, so
                                        # heavy SDKs (pyrealsense2, llama_cpp, tensorrt, torch)
                                        # load only for what a config asks for
    BUSES.names() -> sorted known names (registered + built in)

An unknown name is a ConfigError that lists the known names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from llara_edge.errors import ConfigError


class Registry:
    """name -> class, filled by `register`; built-in names map to the module registering them."""

    def __init__(self, what: str, builtin: dict[str, str], attr: str | None = None):
        self.what = what  # e.g. "camera kind", for error messages
        self.builtin = dict(builtin)
        self.attr = attr  # class attribute that receives the name (e.g. "kind"), or None
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def wrap(cls: type) -> type:
            if self.attr:
                setattr(cls, self.attr, name)
            self._classes[name] = cls
            return cls

        return wrap

    def get(self, name: str) -> type:
        if name not in self._classes and name in self.builtin:
            importlib.import_module(self.builtin[name])
        try:
            return self._classes[name]
        except KeyError as err:
            raise ConfigError(f"unknown {self.what} {name!r}; known: {self.names()}") from err

    def names(self) -> list[str]:
        return sorted(set(self._classes) | set(self.builtin))
