"""Feetech STS/SCS protocol, register tables and FeetechBus against a byte-exact scripted line.

Known vectors are the Feetech manual's examples (ping id 1, read Present_Position, write
Goal_Position with time and speed). The scripted line answers only the exact request bytes it
was given, so every bus call is checked byte for byte.
"""

from __future__ import annotations

import itertools
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serial_fakes import ScriptedLine, feed_chunked

from llara_drivers.base import BusConfig, make_bus
from llara_drivers.errors import DeviceError, DriverConfigError, ProtocolError
from llara_drivers.feetech import protocol as ft
from llara_drivers.feetech.bus import FeetechBus
from llara_drivers.feetech.registers import MODELS, SCS_REGISTERS, STS_REGISTERS
from llara_drivers.servo_wire import (
    BusProtocolError,
    BusTimeoutError,
    Rejection,
    ServoFaultError,
    Status,
)


def fbus(script, **cfg) -> FeetechBus:
    config = BusConfig(kind="feetech", **{"timeout_s": 0.02, "retries": 0, **cfg})
    return make_bus(config, ScriptedLine(script))


H = bytes.fromhex
PING_1 = H("ff ff 01 02 01 fb")
READ_POS_1 = H("ff ff 01 04 02 38 02 be")  # READ id 1, Present_Position (56), 2 bytes


# ----------------------------------------------------------------------------- protocol
def test_manual_packets():
    assert ft.build_packet(1, 0x01) == PING_1
    assert ft.build_packet(1, 0x02, bytes((0x38, 0x02))) == READ_POS_1
    # WRITE id 1 at 42: position 0x0800, time 0, speed 1000 (manual example)
    assert ft.build_packet(1, 0x03, H("2a 00 08 00 00 e8 03")) == H(
        "ff ff 01 09 03 2a 00 08 00 00 e8 03 d5")
    assert ft.build_status(1, 0) == H("ff ff 01 02 00 fc")
    assert ft.checksum(H("01 04 02 38 02")) == 0xBE


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFD), st.integers(0, 0x7F), st.binary(max_size=40))
def test_status_round_trip(servo_id, error, params):
    status = ft.parse_status(ft.build_status(servo_id, error, params))
    assert (status.servo_id, status.error, status.params) == (servo_id, error, params)
    assert status.flags == ft.decode_error(error)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFE), st.integers(0, 0xFF), st.binary(max_size=60))
def test_instruction_round_trip(servo_id, instruction, params):
    packet = ft.build_packet(servo_id, instruction, params)
    assert packet[3] == len(params) + 2
    parsed = ft.parse_instruction(packet)
    assert (parsed.servo_id, parsed.instruction, parsed.params) == (servo_id, instruction, params)


def test_error_bits_decoded():
    assert ft.parse_status(ft.build_status(3, 0x20)).flags == ("overload",)
    assert ft.decode_error(0x24) == ("overheat", "overload")
    assert ft.decode_error(0x01) == ("voltage",)
    assert ft.decode_error(0x0A) == ("angle_sensor", "overcurrent")


@pytest.mark.parametrize(("frame", "reason"), [
    (H("ff ff 01 02 00 fd"), "bad_checksum"),
    (H("ff ff 01 03 00 fc"), "bad_length"),
    (H("ff fe 01 02 00 fc"), "bad_header"),
    (ft.build_status(1, 0x80), "bad_error_byte"),
    (ft.build_packet(0xFE, 0), "bad_id"),
])
def test_parse_status_rejects(frame, reason):
    with pytest.raises(BusProtocolError) as info:
        ft.parse_status(frame)
    assert info.value.reason == reason
    assert isinstance(info.value, ProtocolError)


def test_build_packet_limits():
    with pytest.raises(DriverConfigError):
        ft.build_packet(0xFF, 1)
    with pytest.raises(DriverConfigError):
        ft.build_packet(1, 3, bytes(300))


# ----------------------------------------------------------------------------- scanner
no_ff = st.binary(max_size=12).map(lambda b: b.replace(b"\xff", b"\x00"))


@settings(max_examples=150, deadline=None)
@given(no_ff, no_ff, st.binary(min_size=1, max_size=6).map(lambda b: b.replace(b"\xff", b"")),
       st.lists(st.integers(0, 200), max_size=8))
def test_scanner_resyncs_on_garbage(noise1, noise2, data, cuts):
    bad = bytearray(ft.build_status(2, 0, data))
    bad[-1] ^= 0x55  # corrupt checksum
    stream = noise1 + ft.build_status(1, 0, data) + noise2 + bytes(bad) + ft.build_status(3, 4)
    items = feed_chunked(ft.status_scanner(), stream, cuts)
    statuses = [i for i in items if isinstance(i, Status)]
    assert [(s.servo_id, s.params) for s in statuses] == [(1, data), (3, b"")]
    assert statuses[1].flags == ("overheat",)
    assert Rejection("bad_checksum", 2, True) in items


def test_scanner_tricky_garbage():
    real = ft.build_status(2, 0, b"\x10\x20")
    truncated = H("ff ff 01 05 00 11")  # announces 5 bytes, swallows the next packet's bytes
    stream = b"\xff\xff\xff" + truncated + real + b"\xff"
    items = ft.status_scanner().feed(stream)
    assert [i for i in items if isinstance(i, Status)] == [ft.parse_status(real)]
    assert any(isinstance(i, Rejection) for i in items)


def test_scanner_exact_length_drops_false_headers():
    scanner = ft.status_scanner(2)  # a 2-byte read: LEN must be 4
    items = scanner.feed(H("ff ff 01 fa 00") + ft.build_status(1, 0, b"\x01\x02"))
    assert items[0] == Rejection("bad_length", 1, False)
    assert items[-1].params == b"\x01\x02"


# ----------------------------------------------------------------------------- registers
def test_register_tables_match_formats():
    for table in (STS_REGISTERS, SCS_REGISTERS):
        assert (table["Torque_Enable"].address, table["Torque_Enable"].size) == (40, 1)
        assert (table["Goal_Position"].address, table["Goal_Position"].size) == (42, 2)
        assert (table["Present_Position"].address, table["Present_Position"].size) == (56, 2)
        assert not table["Present_Position"].writable
        spans = sorted((r.address, r.address + r.size) for r in table.values())
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert MODELS["sts3215"].model_number == 777
    assert not MODELS["sts3215"].big_endian and MODELS["scs0009"].big_endian


def test_byte_order_and_sign():
    sts = fbus({})
    scs_bus = fbus({}, model="scs0009")
    assert sts.encode("Goal_Position", 2048) == b"\x00\x08"
    assert scs_bus.encode("Goal_Position", 2048) == b"\x08\x00"
    assert ft.int_to_bytes(0x11223344, 4, big_endian=True) == H("33 44 11 22")  # SDK layout
    assert ft.bytes_to_int(H("33 44 11 22"), big_endian=True) == 0x11223344
    assert sts.encode("Goal_Velocity", -100) == (0x8000 | 100).to_bytes(2, "little")
    assert sts.decode("Present_Velocity", (0x8000 | 7).to_bytes(2, "little")) == -7
    assert sts.encode("Homing_Offset", -5) == ((1 << 11) | 5).to_bytes(2, "little")
    with pytest.raises(DriverConfigError):
        sts.encode("Homing_Offset", 2048)
    with pytest.raises(DriverConfigError):
        sts.encode("Torque_Enable", 256)
    with pytest.raises(DriverConfigError):
        sts.encode("No_Such_Register", 1)


def test_position_radians():
    model = MODELS["sts3215"]
    assert model.to_radians(2048) == 0.0
    assert model.to_radians(3072) == pytest.approx(math.pi / 2)
    assert model.to_radians(1024) == pytest.approx(-math.pi / 2)
    for steps in (0, 1, 2047, 2049, 4095):
        assert model.to_steps(model.to_radians(steps)) == steps


# ----------------------------------------------------------------------------- bus
def test_bus_read_write_sync_bytes():
    sync_read = H("ff ff fe 06 82 38 02 01 02") + bytes((ft.checksum(H("fe 06 82 38 02 01 02")),))
    script = {
        READ_POS_1: [ft.build_status(1, 0, b"\x00\x08")],
        ft.build_packet(1, 3, H("2a 00 0c")): [ft.build_status(1, 0)],
        sync_read: [ft.build_status(2, 0, H("00 04")) + ft.build_status(1, 0, H("ff 0f"))],
        PING_1: [ft.build_status(1, 0)],
        ft.build_packet(1, 2, H("03 02")): [ft.build_status(1, 0, H("09 03"))],
    }
    bus = fbus(script)
    assert bus.read(1, "Present_Position") == 2048
    bus.write(1, "Goal_Position", 3072)
    assert bus.sync_read("Present_Position", [1, 2]) == {1: 4095, 2: 1024}
    assert bus.ping(1) == 777
    assert bus.stats.packets == 5 and bus.stats.retries == 0


def test_sync_write_and_torque_bytes():
    # FORMATS: SYNC_WRITE params [addr, len, (id, data...)*N]
    goal = ft.build_packet(0xFE, 0x83, H("2a 02 01 00 08 02 ff 0f"))
    torque = ft.build_packet(0xFE, 0x83, H("28 01 01 01 02 01"))
    bus = fbus({goal: [], torque: []})
    bus.sync_write("Goal_Position", {1: 2048, 2: 4095})
    bus.enable_torque([1, 2])
    assert bus.serial.written == [goal, torque]
    with pytest.raises(DriverConfigError):
        bus.sync_write("Goal_Position", {})


def test_corrupt_reply_raises_then_retry_succeeds():
    bad = bytearray(ft.build_status(1, 0, b"\x00\x08"))
    bad[5] ^= 0x01
    with pytest.raises(BusProtocolError) as info:
        fbus({READ_POS_1: [bytes(bad)]}).read(1, "Present_Position")
    assert (info.value.servo_id, info.value.reason) == (1, "bad_checksum")

    bus = fbus({READ_POS_1: [bytes(bad), ft.build_status(1, 0, b"\x00\x08")]}, retries=2)
    assert bus.read(1, "Present_Position") == 2048
    assert (bus.stats.retries, bus.stats.protocol_errors) == (1, 1)


def test_no_reply_times_out_after_retries():
    bus = fbus({READ_POS_1: []}, retries=2, timeout_s=0.02)
    start = time.monotonic()
    with pytest.raises(BusTimeoutError) as info:
        bus.read(1, "Present_Position")
    elapsed = time.monotonic() - start
    assert isinstance(info.value, DeviceError)
    assert (info.value.servo_id, info.value.reason, info.value.attempts) == (1, "timeout", 3)
    assert len(bus.serial.written) == 3 and bus.stats.timeouts == 3
    assert 0.055 < elapsed < 0.5


def test_status_error_bits_surface():
    reply = ft.build_status(1, 0x20, b"\x00\x08")
    with pytest.raises(ServoFaultError) as info:
        fbus({READ_POS_1: [reply]}).read(1, "Present_Position")
    assert (info.value.servo_id, info.value.flags) == (1, ("overload",))

    bus = fbus({READ_POS_1: [reply]}, raise_on_fault=False)
    assert bus.read(1, "Present_Position") == 2048
    assert bus.last_flags[1] == ("overload",) and bus.stats.faults == 1


def test_status_of_other_id_is_ignored():
    stale = ft.build_status(2, 0, b"\x11\x11")
    bus = fbus({READ_POS_1: [stale + ft.build_status(1, 0, b"\x00\x08")]})
    assert bus.read(1, "Present_Position") == 2048


def test_config_and_registry_errors():
    with pytest.raises(DriverConfigError):
        BusConfig(timeout_s=0)
    with pytest.raises(DriverConfigError):
        BusConfig(retries=-1)
    with pytest.raises(DriverConfigError):
        make_bus(BusConfig(kind="feetech", model="sts9999"))
    with pytest.raises(DriverConfigError):
        make_bus(BusConfig(kind="nope"))
    with pytest.raises(DriverConfigError):
        FeetechBus(BusConfig(kind="dynamixel"))
    assert isinstance(make_bus(BusConfig(kind="feetech")), FeetechBus)
    with pytest.raises(DeviceError):
        make_bus(BusConfig(kind="feetech")).read(1, "ID")
    with pytest.raises(DriverConfigError):
        make_bus(BusConfig(kind="feetech")).open()
    with pytest.raises(DeviceError):
        make_bus(BusConfig(kind="feetech", port="/dev/does-not-exist-llara")).open()
