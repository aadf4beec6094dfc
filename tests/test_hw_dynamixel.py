"""Dynamixel Protocol 2.0: CRC, byte stuffing, packets, X-series table, DynamixelBus.

Known vectors are the ROBOTIS e-manual's Protocol 2.0 examples (ping, read Present_Position,
write Goal_Position, sync read/write, action, and their status packets) and the CRC-16/BUYPASS
check value. DynamixelBus runs against the byte-exact `ScriptedLine` of serial_fakes.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serial_fakes import ScriptedLine, feed_chunked

from llara_drivers.base import BusConfig, make_bus
from llara_drivers.dynamixel import protocol as dxl
from llara_drivers.dynamixel.bus import DynamixelBus
from llara_drivers.dynamixel.registers import MODELS, X_REGISTERS
from llara_drivers.errors import DriverConfigError
from llara_drivers.servo_wire import (
    BusProtocolError,
    BusTimeoutError,
    Rejection,
    ServoFaultError,
    Status,
)

H = bytes.fromhex
EMANUAL = {  # (id, instruction, params) -> packet
    (1, 0x01, ""): "ff ff fd 00 01 03 00 01 19 4e",
    (1, 0x02, "84 00 04 00"): "ff ff fd 00 01 07 00 02 84 00 04 00 1d 15",
    (1, 0x03, "74 00 00 02 00 00"): "ff ff fd 00 01 09 00 03 74 00 00 02 00 00 ca 89",
    (0xFE, 0x82, "84 00 04 00 01 02"): "ff ff fd 00 fe 09 00 82 84 00 04 00 01 02 ce fa",
    (0xFE, 0x83, "74 00 04 00 01 96 00 00 00 02 aa 00 00 00"):
        "ff ff fd 00 fe 11 00 83 74 00 04 00 01 96 00 00 00 02 aa 00 00 00 82 87",
    (1, 0x05, ""): "ff ff fd 00 01 03 00 05 02 ce",
}
PING_STATUS = H("ff ff fd 00 01 07 00 55 00 06 04 26 65 5d")  # model 1030, firmware 0x26
READ_STATUS = H("ff ff fd 00 01 08 00 55 00 a6 00 00 00 8c c0")  # Present_Position 166


def dbus(script, **cfg) -> DynamixelBus:
    config = BusConfig(kind="dynamixel", **{"timeout_s": 0.02, "retries": 0, **cfg})
    return make_bus(config, ScriptedLine(script))


# ----------------------------------------------------------------------------- CRC, stuffing
@pytest.mark.parametrize(("key", "packet"), EMANUAL.items())
def test_emanual_packets(key, packet):
    servo_id, instruction, params = key
    assert dxl.build_packet(servo_id, instruction, H(params)) == H(packet)


def test_crc_vectors_and_table():
    assert dxl.crc16(b"123456789") == 0xFEE8  # CRC-16/BUYPASS check value
    assert dxl.crc16(PING_STATUS[:-2]) == 0x5D65
    assert len(dxl.CRC_TABLE) == 256
    assert dxl.CRC_TABLE[:4] == (0x0000, 0x8005, 0x800F, 0x000A)
    assert dxl.CRC_TABLE[-1] == 0x0202
    data = bytes(range(50))
    assert dxl.crc16(data[20:], dxl.crc16(data[:20])) == dxl.crc16(data)


def test_stuffing_examples():
    assert dxl.stuff(H("ff ff fd")) == H("ff ff fd fd")
    assert dxl.stuff(H("ff ff ff fd 00")) == H("ff ff ff fd fd 00")
    assert dxl.stuff(H("ff fd ff ff")) == H("ff fd ff ff")
    assert dxl.unstuff(H("ff ff fd fd fd")) == H("ff ff fd fd")
    # a 4-byte Goal_Position of 0x00FDFFFF puts FF FF FD in the params: LEN counts the extra FD
    packet = dxl.build_packet(1, 0x03, H("74 00 ff ff fd 00"))
    assert packet[5] == 10 and H("ff ff fd fd 00") in packet
    assert dxl.parse_instruction(packet).params == H("74 00 ff ff fd 00")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0xFF, 0xFD, 0x00, 0x55]) | st.integers(0, 255), max_size=40))
def test_stuffing_round_trip(values):
    payload = bytes(values)
    stuffed = dxl.stuff(payload)
    assert dxl.unstuff(stuffed) == payload
    for i in range(len(stuffed) - 2):  # every FF FF FD on the wire is followed by FD
        if stuffed[i:i + 3] == H("ff ff fd"):
            assert stuffed[i + 3:i + 4] == b"\xfd"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFD), st.integers(0, 0xFF),
       st.lists(st.sampled_from([0xFF, 0xFD]) | st.integers(0, 255), max_size=30))
def test_status_round_trip(servo_id, error, values):
    status = dxl.parse_status(dxl.build_status(servo_id, error, bytes(values)))
    assert (status.servo_id, status.error, status.params) == (servo_id, error, bytes(values))


# ----------------------------------------------------------------------------- status parsing
def test_emanual_status_packets():
    ping = dxl.parse_status(PING_STATUS)
    assert int.from_bytes(ping.params[:2], "little") == 1030 and ping.params[2] == 0x26
    read = dxl.parse_status(READ_STATUS)
    assert (read.servo_id, read.error, read.params) == (1, 0, H("a6 00 00 00"))


def test_error_flags():
    assert dxl.decode_error(0x00) == ()
    assert dxl.decode_error(0x07) == ("access",)
    assert dxl.decode_error(0x80) == ("hardware_alert",)
    assert dxl.decode_error(0x84) == ("hardware_alert", "data_range")
    assert dxl.decode_hardware_error(0x25) == ("input_voltage", "overheating", "overload")
    assert dxl.parse_status(dxl.build_status(4, 0x82)).flags == ("hardware_alert", "instruction")


@pytest.mark.parametrize(("frame", "reason"), [
    (READ_STATUS[:-1] + b"\x00", "bad_crc"),
    (dxl.build_packet(1, 0x02, H("84 00 04 00")), "not_status"),
    (H("ff ff fd 00 01 09 00 55 00 a6 00 00 00 8c c0"), "bad_length"),
    (H("ff ff fd 01 01 08 00 55 00 a6 00 00 00 8c c0"), "bad_header"),
])
def test_parse_status_rejects(frame, reason):
    with pytest.raises(BusProtocolError) as info:
        dxl.parse_status(frame)
    assert info.value.reason == reason


no_header = st.binary(max_size=12).map(lambda b: b.replace(b"\xff", b"\x01"))


@settings(max_examples=150, deadline=None)
@given(no_header, no_header, st.binary(max_size=8), st.lists(st.integers(0, 200), max_size=8))
def test_scanner_resyncs_on_garbage(noise1, noise2, data, cuts):
    bad = bytearray(dxl.build_status(2, 0, data))
    bad[-2] ^= 0x01  # corrupt the CRC
    partial = H("ff ff fd 07 ff ff fd")  # header-like bytes with a bad reserved byte
    stream = (noise1 + partial + dxl.build_status(1, 0, data) + noise2 + bytes(bad)
              + dxl.build_status(3, 0x80))
    items = feed_chunked(dxl.status_scanner(), stream, cuts)
    statuses = [i for i in items if isinstance(i, Status)]
    assert [(s.servo_id, s.params) for s in statuses] == [(1, data), (3, b"")]
    assert statuses[1].flags == ("hardware_alert",)
    assert Rejection("bad_crc", 2, True) in items


# ----------------------------------------------------------------------------- registers
def test_x_series_table():
    assert (X_REGISTERS["Torque_Enable"].address, X_REGISTERS["Torque_Enable"].size) == (64, 1)
    assert (X_REGISTERS["Goal_Position"].address, X_REGISTERS["Goal_Position"].size) == (116, 4)
    assert (X_REGISTERS["Present_Position"].address,
            X_REGISTERS["Present_Position"].size) == (132, 4)
    assert X_REGISTERS["Hardware_Error_Status"].address == 70
    spans = sorted((r.address, r.address + r.size) for r in X_REGISTERS.values())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert MODELS["xm430-w350"].model_number == 1020
    bus = dbus({})
    assert bus.encode("Present_Position", -1) == H("ff ff ff ff")
    assert bus.decode("Goal_Velocity", H("9c ff ff ff")) == -100
    assert bus.model.to_radians(1024) == pytest.approx(-3.14159265 / 2)
    with pytest.raises(DriverConfigError):
        bus.encode("Goal_Position", 1 << 31)


# ----------------------------------------------------------------------------- bus
def req(key: tuple) -> bytes:
    return H(EMANUAL[key])


def test_bus_ping_read_write_sync():
    script = {
        req((1, 0x01, "")): [PING_STATUS],
        req((1, 0x02, "84 00 04 00")): [READ_STATUS],
        req((1, 0x03, "74 00 00 02 00 00")): [dxl.build_status(1, 0)],
        req((0xFE, 0x82, "84 00 04 00 01 02")): [
            dxl.build_status(1, 0, H("00 08 00 00")) + dxl.build_status(2, 0, H("ff ff ff ff"))],
        req((0xFE, 0x83, "74 00 04 00 01 96 00 00 00 02 aa 00 00 00")): [],
        req((1, 0x05, "")): [dxl.build_status(1, 0)],
    }
    bus = dbus(script)
    assert bus.ping(1) == 1030
    assert bus.read(1, "Present_Position") == 166
    bus.write(1, "Goal_Position", 512)
    assert bus.sync_read("Present_Position", [1, 2]) == {1: 2048, 2: -1}
    bus.sync_write("Goal_Position", {1: 150, 2: 170})
    bus.action(1)
    assert bus.stats.packets == 6


def test_sync_read_retries_only_missing_ids():
    both = req((0xFE, 0x82, "84 00 04 00 01 02"))
    only2 = dxl.build_packet(0xFE, 0x82, H("84 00 04 00 02"))
    bus = dbus({both: [dxl.build_status(1, 0, H("01 00 00 00"))], only2: [b"", b""]}, retries=2)
    with pytest.raises(BusTimeoutError) as info:
        bus.sync_read("Present_Position", [1, 2])
    assert info.value.missing == (2,) and info.value.attempts == 3
    assert bus.serial.written == [both, only2, only2]


def test_refused_command_always_raises():
    request = dxl.build_packet(1, 0x03, H("84 00 00 01 00 00"))  # write to Present_Position
    bus = dbus({request: [dxl.build_status(1, 0x07)]}, raise_on_fault=False)
    with pytest.raises(ServoFaultError) as info:
        bus.write_raw(1, 132, H("00 01 00 00"))
    assert info.value.flags == ("access",) and info.value.servo_id == 1


def test_hardware_alert_names_its_cause():
    read_pos = req((1, 0x02, "84 00 04 00"))
    read_hw = dxl.build_packet(1, 0x02, H("46 00 01 00"))
    alert_reply = dxl.build_status(1, 0x80, H("a6 00 00 00"))
    script = {read_pos: [alert_reply, alert_reply], read_hw: [dxl.build_status(1, 0x80, b"\x24")]}
    bus = dbus(script)
    with pytest.raises(ServoFaultError) as info:
        bus.read(1, "Present_Position")
    assert info.value.flags == ("hardware_alert", "overheating", "overload")
    bus.config.raise_on_fault = False
    assert bus.read(1, "Present_Position") == 166
    assert bus.last_flags[1] == ("hardware_alert",)


def test_corrupt_crc_then_retry():
    request = req((1, 0x02, "84 00 04 00"))
    bad = READ_STATUS[:-1] + b"\x00"
    bus = dbus({request: [bad, READ_STATUS]}, retries=1)
    assert bus.read(1, "Present_Position") == 166
    assert bus.stats.protocol_errors == 1
    with pytest.raises(BusProtocolError) as info:
        dbus({request: [bad]}).read(1, "Present_Position")
    assert info.value.reason == "bad_crc"
