"""Dynamixel Protocol 2.0: CRC-16 (poly 0x8005), byte stuffing, packet build/parse, error bits.

Packet (FORMATS.md §6): `FF FF FD 00 | ID | LEN_L LEN_H | INSTR | params | CRC_L CRC_H`.
LEN counts INSTR + (stuffed) params + CRC; the CRC covers every byte before it, after
stuffing. Stuffing: wherever `FF FF FD` occurs in INSTR+params, an extra `FD` follows it, so
the header never appears inside a packet. A status packet has INSTR 0x55 and the error byte
as first parameter: bit 7 = hardware alert (details in register Hardware_Error_Status),
bits 0-6 = an error number (the instruction was not executed).
All functions are pure; the scanners are incremental parsers for a noisy line.
"""

from __future__ import annotations

from llara_drivers.errors import DriverConfigError
from llara_drivers.servo_wire import (
    MAX_SERVO_ID,
    BusProtocolError,
    FrameScanner,
    FrameSpec,
    Packet,
    Status,
)

HEADER = b"\xff\xff\xfd\x00"
STATUS = 0x55  # instruction code of status packets
MAX_PACKET = 1024  # bytes per packet, the vendor SDK's TX/RX buffer size
CRC_POLY = 0x8005

ALERT_BIT = 0x80
# Error numbers in bits 0-6 of the status error byte (e-manual "Status Packet").
ERROR_NUMBERS = {1: "result_fail", 2: "instruction", 3: "crc", 4: "data_range",
                 5: "data_length", 6: "data_limit", 7: "access"}
# Bits of the Hardware_Error_Status register (X series, address 70).
HARDWARE_ERROR_BITS: tuple[tuple[str, int], ...] = (
    ("input_voltage", 0x01),
    ("overheating", 0x04),
    ("motor_encoder", 0x08),
    ("electrical_shock", 0x10),
    ("overload", 0x20),
)


def _crc_table(poly: int = CRC_POLY) -> tuple[int, ...]:
    """MSB-first CRC-16 lookup table: entry i is the CRC of the single byte i (init 0)."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/BUYPASS (poly 0x8005, init 0, no reflection) as Dynamixel 2.0 uses it."""
    for byte in data:
        crc = ((crc << 8) ^ CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(payload: bytes) -> bytes:
    """Insert `FD` after every `FF FF FD` of the original payload (INSTR + params)."""
    out = bytearray()
    for i, byte in enumerate(payload):
        out.append(byte)
        if byte == 0xFD and i >= 2 and payload[i - 2] == 0xFF and payload[i - 1] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(payload: bytes) -> bytes:
    """Drop the `FD` that follows each `FF FF FD` of a stuffed payload."""
    out = bytearray()
    i = 0
    while i < len(payload):
        out.append(payload[i])
        triple = i >= 2 and payload[i - 2: i + 1] == b"\xff\xff\xfd"
        i += 2 if triple and i + 1 < len(payload) and payload[i + 1] == 0xFD else 1
    return bytes(out)


def build_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """Instruction (or status, with INSTR 0x55) packet bytes: stuffed, LEN and CRC set."""
    if not 0 <= servo_id <= 0xFE or not 0 <= instruction <= 0xFF:
        raise DriverConfigError(f"bad id/instruction {servo_id}/{instruction}")
    payload = stuff(bytes((instruction,)) + bytes(params))
    if len(payload) + 9 > MAX_PACKET:
        raise DriverConfigError(f"packet of {len(payload) + 9} bytes exceeds {MAX_PACKET}")
    head = HEADER + bytes((servo_id,)) + (len(payload) + 2).to_bytes(2, "little")
    body = head + payload
    return body + crc16(body).to_bytes(2, "little")


def build_status(servo_id: int, error: int, params: bytes = b"") -> bytes:
    """Status packet a servo sends: INSTR 0x55, error byte, data."""
    return build_packet(servo_id, STATUS, bytes((error,)) + bytes(params))


def decode_error(error: int) -> tuple[str, ...]:
    """Status error byte -> flags: "hardware_alert" for bit 7, plus the error number's name."""
    flags = ("hardware_alert",) if error & ALERT_BIT else ()
    number = error & 0x7F
    if number:
        flags += (ERROR_NUMBERS.get(number, f"error_{number}"),)
    return flags


def decode_hardware_error(value: int) -> tuple[str, ...]:
    """Hardware_Error_Status register -> flags, e.g. 0x24 -> ("overheating", "overload")."""
    return tuple(name for name, bit in HARDWARE_ERROR_BITS if value & bit)


def _check_frame(frame: bytes) -> bytes:
    """Validate header/LEN/CRC; return the unstuffed INSTR + params."""
    if len(frame) < 10 or frame[:4] != HEADER:
        raise BusProtocolError(None, "bad_header", frame[:5].hex(" "))
    if int.from_bytes(frame[5:7], "little") + 7 != len(frame):
        raise BusProtocolError(frame[4], "bad_length", f"frame of {len(frame)} bytes")
    want = crc16(frame[:-2])
    if int.from_bytes(frame[-2:], "little") != want:
        raise BusProtocolError(frame[4], "bad_crc",
                               f"got 0x{int.from_bytes(frame[-2:], 'little'):04X}, "
                               f"want 0x{want:04X}")
    return unstuff(frame[7:-2])


def parse_status(frame: bytes) -> Status:
    """One complete status frame -> Status (params unstuffed, error flags decoded)."""
    frame = bytes(frame)
    payload = _check_frame(frame)
    if frame[4] > MAX_SERVO_ID:
        raise BusProtocolError(frame[4], "bad_id")
    if payload[0] != STATUS or len(payload) < 2:
        raise BusProtocolError(frame[4], "not_status", f"instruction 0x{payload[0]:02X}")
    return Status(frame[4], payload[1], payload[2:], decode_error(payload[1]))


def parse_instruction(frame: bytes) -> Packet:
    """One complete instruction frame -> Packet (a status frame is refused)."""
    frame = bytes(frame)
    payload = _check_frame(frame)
    if payload[0] == STATUS:
        raise BusProtocolError(frame[4], "not_instruction")
    return Packet(frame[4], payload[0], payload[1:])


STATUS_SPEC = FrameSpec(HEADER, id_offset=4, max_id=MAX_SERVO_ID, len_offset=5, len_size=2,
                        overhead=7, decode=parse_status)
INSTRUCTION_SPEC = FrameSpec(HEADER, id_offset=4, max_id=0xFE, len_offset=5, len_size=2,
                             overhead=7, decode=parse_instruction)


def status_scanner(n_params: int | None = None) -> FrameScanner:
    """Scanner for status frames. With `n_params` data bytes LEN is at most n+4 plus room for
    stuffing (one extra byte per three); LEN 4 (no data) stays allowed because a servo that
    refuses a READ answers with its error byte only."""
    if n_params is None:
        return FrameScanner(STATUS_SPEC, 4, MAX_PACKET - 7)
    return FrameScanner(STATUS_SPEC, 4, n_params + 4 + (n_params + 2) // 3)


def instruction_scanner() -> FrameScanner:
    return FrameScanner(INSTRUCTION_SPEC, 3, MAX_PACKET - 7)


def int_to_bytes(raw: int, size: int) -> bytes:
    """Unsigned value -> little-endian wire bytes."""
    if not 0 <= raw < (1 << (8 * size)):
        raise DriverConfigError(f"value {raw} does not fit {size} byte(s)")
    return raw.to_bytes(size, "little")


def bytes_to_int(data: bytes) -> int:
    return int.from_bytes(bytes(data), "little")
