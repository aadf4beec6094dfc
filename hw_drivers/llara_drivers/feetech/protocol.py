"""Feetech STS/SCS wire protocol: packet build/parse, checksum, byte order, error bits.

Packet (FORMATS.md §6): `FF FF | ID | LEN | INSTR | params | CHK`, LEN = len(params) + 2,
CHK = ~(ID + LEN + INSTR + sum(params)) & 0xFF. A status packet has the same frame with the
error byte in the INSTR slot. All functions are pure; `status_scanner` / `instruction_scanner`
return incremental parsers for a noisy line (see `FrameScanner`).

Byte order: STS/SMS little-endian, SCS big-endian. For 4-byte values in SCS order the vendor
SDK (`scservo_sdk`, SCS_END=1) sends the low 16-bit word first, each word big-endian
(`[w0_hi, w0_lo, w1_hi, w1_lo]`); `int_to_bytes` reproduces that layout exactly.
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

HEADER = b"\xff\xff"
MAX_PACKET = 250  # bytes per packet, the vendor SDK's TX/RX buffer size
MAX_LEN = MAX_PACKET - 4  # largest LEN field

# Status error byte bits (Feetech STS/SCS manual; scservo_sdk ERRBIT_*).
ERROR_BITS: tuple[tuple[str, int], ...] = (
    ("voltage", 0x01),
    ("angle_sensor", 0x02),
    ("overheat", 0x04),
    ("overcurrent", 0x08),
    ("overload", 0x20),
)


def checksum(body: bytes) -> int:
    """~(sum of ID, LEN, INSTR/ERR and params) & 0xFF; `body` excludes header and CHK."""
    return ~sum(body) & 0xFF


def build_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """Instruction (or, with the error byte as `instruction`, status) packet bytes."""
    if not 0 <= servo_id <= 0xFE or not 0 <= instruction <= 0xFF:
        raise DriverConfigError(f"bad id/instruction {servo_id}/{instruction}")
    if len(params) > MAX_LEN - 2:
        raise DriverConfigError(f"{len(params)} parameter bytes exceed the "
                                f"{MAX_PACKET}-byte packet")
    body = bytes((servo_id, len(params) + 2, instruction)) + bytes(params)
    return HEADER + body + bytes((checksum(body),))


def build_status(servo_id: int, error: int, params: bytes = b"") -> bytes:
    """Status packet a servo sends: the error byte takes the instruction's place."""
    return build_packet(servo_id, error, params)


def decode_error(error: int) -> tuple[str, ...]:
    """Names of the set error bits, e.g. 0x24 -> ("overheat", "overload")."""
    return tuple(name for name, bit in ERROR_BITS if error & bit)


def _check_frame(frame: bytes) -> None:
    if len(frame) < 6 or frame[:2] != HEADER:
        raise BusProtocolError(None, "bad_header", frame[:4].hex(" "))
    if frame[3] + 4 != len(frame):
        raise BusProtocolError(frame[2], "bad_length", f"LEN {frame[3]}, frame {len(frame)} bytes")
    if checksum(frame[2:-1]) != frame[-1]:
        raise BusProtocolError(frame[2], "bad_checksum",
                               f"got 0x{frame[-1]:02X}, want 0x{checksum(frame[2:-1]):02X}")


def parse_status(frame: bytes) -> Status:
    """One complete status frame -> Status; raises BusProtocolError with a reason tag."""
    frame = bytes(frame)
    _check_frame(frame)
    if frame[2] > MAX_SERVO_ID:
        raise BusProtocolError(frame[2], "bad_id")
    if frame[4] & 0x80:  # bit 7 is never set by a servo (the SDK rejects it too)
        raise BusProtocolError(frame[2], "bad_error_byte", f"0x{frame[4]:02X}")
    return Status(frame[2], frame[4], frame[5:-1], decode_error(frame[4]))


def parse_instruction(frame: bytes) -> Packet:
    """One complete instruction frame -> Packet (what a servo decodes)."""
    frame = bytes(frame)
    _check_frame(frame)
    return Packet(frame[2], frame[4], frame[5:-1])


STATUS_SPEC = FrameSpec(HEADER, id_offset=2, max_id=MAX_SERVO_ID, len_offset=3, len_size=1,
                        overhead=4, decode=parse_status)
INSTRUCTION_SPEC = FrameSpec(HEADER, id_offset=2, max_id=0xFE, len_offset=3, len_size=1,
                             overhead=4, decode=parse_instruction)


def status_scanner(n_params: int | None = None) -> FrameScanner:
    """Scanner for status frames; with `n_params` only LEN == n_params + 2 is accepted."""
    if n_params is None:
        return FrameScanner(STATUS_SPEC, 2, MAX_LEN)
    return FrameScanner(STATUS_SPEC, n_params + 2, n_params + 2)


def instruction_scanner() -> FrameScanner:
    return FrameScanner(INSTRUCTION_SPEC, 2, MAX_LEN)


def int_to_bytes(raw: int, size: int, big_endian: bool = False) -> bytes:
    """Unsigned value -> wire bytes. SCS (big_endian) 4-byte values: low word first, each word
    big-endian, as scservo_sdk's SCS_LOBYTE/SCS_HIBYTE/SCS_LOWORD macros produce."""
    if not 0 <= raw < (1 << (8 * size)):
        raise DriverConfigError(f"value {raw} does not fit {size} byte(s)")
    if not big_endian or size == 1:
        return raw.to_bytes(size, "little")
    words = (raw & 0xFFFF, raw >> 16) if size == 4 else (raw,)
    return b"".join(word.to_bytes(2, "big") for word in words)


def bytes_to_int(data: bytes, big_endian: bool = False) -> int:
    """Inverse of `int_to_bytes` for 1, 2 or 4 bytes."""
    data = bytes(data)
    if not big_endian or len(data) == 1:
        return int.from_bytes(data, "little")
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    return sum(word << (16 * i) for i, word in enumerate(words))
