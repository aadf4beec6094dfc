"""Wire-level types shared by the servo backends: instruction codes, frames, errors, registers.

Contract:
- `FrameScanner` turns a noisy byte stream into frames. It resynchronises on garbage (drops
  bytes until the next header) and reports each rejected candidate (bad id, length, checksum,
  field) as a `Rejection` instead of raising, so the caller decides when a transaction failed.
- Values cross the bus in register units (raw steps, raw flags). `Register.to_raw` /
  `from_raw` apply the register's sign convention; `ServoModel.to_radians` / `to_steps`
  convert positions (steps per revolution and centre step are model data).
- Errors raised by the bus layer carry `servo_id` and a short `reason` tag.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any

from llara_drivers.errors import DeviceError, DriverConfigError, ProtocolError

BROADCAST_ID = 0xFE
MAX_SERVO_ID = 0xFD  # highest id a status packet may carry (0xFE is broadcast)


class Instruction(IntEnum):
    """Instruction codes; Feetech STS/SCS and Dynamixel 2.0 share these values."""

    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


# ----------------------------------------------------------------------------- errors
class BusProtocolError(ProtocolError):
    """Bytes from `servo_id` broke the wire protocol; `reason` is a short tag (bad_checksum...)."""

    def __init__(self, servo_id: int | None, reason: str, message: str = ""):
        self.servo_id = servo_id
        self.reason = reason
        super().__init__(f"servo {servo_id}: {reason}" + (f": {message}" if message else ""))


class BusTimeoutError(DeviceError):
    """No valid status from `servo_id` (and the other `missing` ids) after every retry."""

    def __init__(self, servo_id: int, missing: tuple[int, ...], attempts: int):
        self.servo_id = servo_id
        self.reason = "timeout"
        self.missing = missing
        self.attempts = attempts
        super().__init__(f"servo {servo_id}: timeout: no status from ids {list(missing)} "
                         f"after {attempts} attempt(s)")


class ServoFaultError(DeviceError):
    """A status packet carried error bits; `flags` names them (e.g. ("overload",))."""

    def __init__(self, servo_id: int, error: int, flags: tuple[str, ...]):
        self.servo_id = servo_id
        self.reason = "status_error"
        self.error = error
        self.flags = flags
        super().__init__(f"servo {servo_id}: status error 0x{error:02X} {list(flags)}")


# ----------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class Status:
    """A decoded status packet: `params` are the data bytes after the error byte."""

    servo_id: int
    error: int
    params: bytes
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Packet:
    """A decoded instruction packet (what a servo receives)."""

    servo_id: int
    instruction: int
    params: bytes


@dataclass(frozen=True)
class Rejection:
    """A frame candidate the scanner threw away. `complete` is True when a whole frame of the
    announced length was present (so it was a real but corrupted packet, not a false header)."""

    reason: str
    servo_id: int | None
    complete: bool


@dataclass(frozen=True)
class FrameSpec:
    """Where the fields of a frame sit; shared by status and instruction frames."""

    header: bytes  # sync bytes every frame starts with
    id_offset: int  # index of the id byte
    max_id: int  # highest id accepted at id_offset
    len_offset: int  # index of the little-endian LEN field
    len_size: int  # 1 (Feetech) or 2 (Dynamixel)
    overhead: int  # frame bytes not counted by LEN (header, id, LEN field)
    decode: Callable[[bytes], Any]  # whole frame -> Status | Packet; raises BusProtocolError


class FrameScanner:
    """Incremental frame parser for a noisy line.

    `feed(bytes)` returns the frames completed so far, in order, mixed with `Rejection`s.
    LEN values outside [min_len, max_len] are rejected at once (a caller that knows the exact
    reply length passes a tight range, so false headers in noise are dropped without waiting).
    """

    def __init__(self, spec: FrameSpec, min_len: int, max_len: int):
        self.spec = spec
        self.min_len = min_len
        self.max_len = max_len
        self.garbage = 0  # bytes skipped while hunting for a header
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self._buf += data
        out = []
        while (item := self._step()) is not None:
            out.append(item)
        return out

    def _reject(self, reason: str, servo_id: int | None, complete: bool) -> Rejection:
        del self._buf[0]  # resynchronise: the next header may start inside this candidate
        return Rejection(reason, servo_id, complete)

    def _step(self) -> Any:
        spec, buf = self.spec, self._buf
        start = buf.find(spec.header)
        if start < 0:
            keep = len(spec.header) - 1  # the tail may be the start of a split header
            self.garbage += max(0, len(buf) - keep)
            del buf[: max(0, len(buf) - keep)]
            return None
        self.garbage += start
        del buf[:start]
        if len(buf) < spec.len_offset + spec.len_size:
            return None
        servo_id = buf[spec.id_offset]
        if servo_id > spec.max_id:
            return self._reject("bad_id", None, False)
        length = int.from_bytes(buf[spec.len_offset: spec.len_offset + spec.len_size], "little")
        if not self.min_len <= length <= self.max_len:
            return self._reject("bad_length", servo_id, False)
        total = spec.overhead + length
        if len(buf) < total:
            return None
        try:
            item = spec.decode(bytes(buf[:total]))
        except BusProtocolError as exc:
            return self._reject(exc.reason, servo_id, True)
        del buf[:total]
        return item


# ----------------------------------------------------------------------------- registers
@dataclass(frozen=True)
class Register:
    """One control-table entry. `encoding`: "u" unsigned, "s" two's complement, "smN"
    sign-magnitude with the sign at bit N (Feetech velocities and offsets)."""

    name: str
    address: int
    size: int  # bytes on the wire: 1, 2 or 4
    writable: bool = True
    encoding: str = "u"

    def __post_init__(self):
        if self.size not in (1, 2, 4) or not 0 <= self.address <= 0xFFFF:
            raise DriverConfigError(f"register {self.name}: bad address/size "
                                    f"{self.address}/{self.size}")
        if self.encoding not in ("u", "s") and not (
                self.encoding.startswith("sm") and 0 < self._sign_bit < 8 * self.size):
            raise DriverConfigError(f"register {self.name}: unknown encoding {self.encoding!r}")

    @property
    def _sign_bit(self) -> int:
        return int(self.encoding[2:]) if self.encoding[2:].isdigit() else -1

    def to_raw(self, value: int) -> int:
        """Signed/unsigned register value -> unsigned wire integer (DriverConfigError if out of
        range)."""
        bits = 8 * self.size
        value = int(value)
        if self.encoding == "u":
            low, high = 0, (1 << bits) - 1
        elif self.encoding == "s":
            low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        else:
            high = (1 << self._sign_bit) - 1
            low = -high
        if not low <= value <= high:
            raise DriverConfigError(f"{self.name}: value {value} outside [{low}, {high}]")
        if self.encoding.startswith("sm"):
            return abs(value) | ((1 << self._sign_bit) if value < 0 else 0)
        return value & ((1 << bits) - 1)

    def from_raw(self, raw: int) -> int:
        """Unsigned wire integer -> register value (sign applied)."""
        bits = 8 * self.size
        if self.encoding == "s":
            return raw - (1 << bits) if raw >> (bits - 1) else raw
        if self.encoding.startswith("sm"):
            magnitude = raw & ((1 << self._sign_bit) - 1)
            return -magnitude if (raw >> self._sign_bit) & 1 else magnitude
        return raw


RegisterRow = tuple  # (name, address, size, access "r"/"rw", encoding)


def table_from_rows(rows: Iterable[RegisterRow]) -> Mapping[str, Register]:
    """Build a read-only name -> Register map from data rows."""
    table = {}
    for name, address, size, access, encoding in rows:
        table[name] = Register(name, address, size, access == "rw", encoding)
    return MappingProxyType(table)


@dataclass(frozen=True)
class ServoModel:
    """A servo model: its control table, model number and position geometry."""

    name: str
    model_number: int
    registers: Mapping[str, Register]
    steps_per_rev: float = 4096.0  # position steps per full revolution
    centre: int = 2048  # step value at 0 rad
    big_endian: bool = False  # multi-byte register order (Feetech SCS series: True)

    def register(self, key: str | Register) -> Register:
        if isinstance(key, Register):
            return key
        try:
            return self.registers[key]
        except KeyError as exc:
            raise DriverConfigError(f"{self.name}: no register {key!r}") from exc

    def to_radians(self, steps: int) -> float:
        return steps_to_radians(steps, self.steps_per_rev, self.centre)

    def to_steps(self, radians: float) -> int:
        return radians_to_steps(radians, self.steps_per_rev, self.centre)


def steps_to_radians(steps: float, steps_per_rev: float = 4096.0, centre: float = 2048) -> float:
    """Position steps -> radians, 0 rad at `centre` (STS3215 / Dynamixel X: 4096/rev, 2048)."""
    return (steps - centre) * (2.0 * math.pi / steps_per_rev)


def radians_to_steps(radians: float, steps_per_rev: float = 4096.0, centre: float = 2048) -> int:
    """Radians -> nearest position step."""
    return round(radians * steps_per_rev / (2.0 * math.pi) + centre)
