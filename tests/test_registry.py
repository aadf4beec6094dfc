"""The one registry shape behind buses, cameras, LLM backends and vision engines; names from
other distributions come through entry points (the simulator's cameras, the torch engines)."""

from __future__ import annotations

import sys

import pytest

from llara_drivers.errors import DriverConfigError
from llara_drivers.registry import Registry
from llara_edge.errors import ConfigError


def test_register_get_names_and_errors():
    reg = Registry("widget", {"lazy": "llara_drivers.dynamixel.bus"}, attr="kind")

    @reg.register("plain")
    class Plain:
        pass

    assert reg.get("plain") is Plain and Plain.kind == "plain"
    assert reg.names() == ["lazy", "plain"]
    with pytest.raises(DriverConfigError,
                       match=r"unknown widget 'nope'; known: \['lazy', 'plain'\]"):
        reg.get("nope")
    # a built-in name imports its module, which registers into ITS registry, not this one
    with pytest.raises(DriverConfigError, match="unknown widget 'lazy'"):
        reg.get("lazy")
    assert "llara_drivers.dynamixel.bus" in sys.modules


def test_the_product_registries_are_lazy_and_typed():
    from llara_drivers.base import BUSES
    from llara_drivers.camera_base import CAMERAS
    from llara_edge.backends.base import BACKENDS, VISION

    assert BUSES.names() == ["dynamixel", "feetech"]
    assert BUSES.get("feetech").kind == "feetech"
    assert CAMERAS.get("file").kind == "file"
    assert set(BACKENDS.names()) >= {"gguf", "onnx", "trt", "torch"}  # torch: llara-edge-export
    assert {"onnx+fused", "torch"} <= set(VISION.names())
    assert {"sim", "software-realsense"} <= set(CAMERAS.names())  # llara-edge's entry points
    assert CAMERAS.get("sim").__module__ == "llara_edge.sim.cameras.camera"
    with pytest.raises(DriverConfigError, match="unknown camera kind"):
        CAMERAS.get("kinect")
    with pytest.raises(ConfigError, match="unknown backend 'tensorflow'"):
        BACKENDS.get("tensorflow")
