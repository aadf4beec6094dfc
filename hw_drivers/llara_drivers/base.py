"""Servo-bus base: `BusConfig`, the `MotorBus` transaction engine, and the registry of bus kinds.

Contract:
- A `MotorBus` talks to one half-duplex serial line (pyserial `Serial`, or any injected object
  with the `SerialLike` members). Each call sends one instruction packet and, for a unicast
  id, waits for that servo's status packet; `sync_read` collects one status per listed id.
- Replies are scanned with the backend's `FrameScanner` (garbage skipped, bad frames rejected).
  A timeout or a corrupt reply is retried up to `BusConfig.retries` times (a sync read retries
  only the ids still missing); then `BusTimeoutError` (a `DeviceError`) or `BusProtocolError`
  (a `ProtocolError`) is raised, both carrying `servo_id` and `reason`.
- Status error bits are decoded into `Status.flags`, recorded in `last_flags[id]`, and raised as
  `ServoFaultError` when `raise_on_fault` is set; flags a backend lists in `REFUSING_FLAGS`
  (the servo did not execute the command) always raise.
- Values are in register units; `read_positions` / `write_positions` convert to radians.
- Backends register under a kind name (`register_bus`); `make_bus(config)` picks one from the
  registry and imports the built-in backends on first use.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

import serial

from llara_drivers.errors import DeviceError, DriverConfigError
from llara_drivers.registry import Registry
from llara_drivers.servo_wire import (
    BROADCAST_ID,
    BusProtocolError,
    BusTimeoutError,
    FrameScanner,
    Instruction,
    Register,
    Rejection,
    ServoFaultError,
    ServoModel,
    Status,
)


# ----------------------------------------------------------------------------- config
@dataclass
class BusConfig:
    """Serial bus settings. `port` may stay empty when a serial-like object is injected."""

    kind: str = "feetech"  # registry key: "feetech" | "dynamixel"
    port: str = ""
    model: str = ""  # empty: the backend's default model
    baudrate: int = 1_000_000
    timeout_s: float = 0.05  # per reply (per attempt)
    retries: int = 2  # extra attempts after a timeout or a corrupt reply
    raise_on_fault: bool = True  # hardware error bits raise ServoFaultError (else only recorded)

    def __post_init__(self):
        if not self.kind:
            raise DriverConfigError("bus kind must be set")
        if self.baudrate <= 0:
            raise DriverConfigError(f"baudrate must be positive, got {self.baudrate}")
        if not 0.0 < self.timeout_s <= 10.0:
            raise DriverConfigError(f"timeout_s must be in (0, 10], got {self.timeout_s}")
        if not 0 <= self.retries <= 20:
            raise DriverConfigError(f"retries must be in [0, 20], got {self.retries}")


@dataclass
class BusStats:
    """Counters since the bus was created (per attempt, not per call)."""

    packets: int = 0
    retries: int = 0
    timeouts: int = 0
    protocol_errors: int = 0
    rejected_frames: int = 0
    faults: int = 0


class SerialLike(Protocol):
    """What the bus needs of a pyserial `Serial` (tests inject fakes with these members).
    `read` must return within about `timeout` seconds even when no byte arrives."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


# ----------------------------------------------------------------------------- registry
BUSES = Registry("bus kind", {
    "feetech": "llara_drivers.feetech.bus",
    "dynamixel": "llara_drivers.dynamixel.bus",
}, attr="kind", group="llara_drivers.buses")


def register_bus(kind: str) -> Callable[[type[MotorBus]], type[MotorBus]]:
    """Class decorator: make a MotorBus subclass available to `make_bus` under `kind`."""
    return BUSES.register(kind)


def bus_class(kind: str) -> type[MotorBus]:
    return BUSES.get(kind)


def make_bus(config: BusConfig, serial: SerialLike | None = None) -> MotorBus:
    """Instantiate the backend registered for `config.kind`."""
    return bus_class(config.kind)(config, serial)


# ----------------------------------------------------------------------------- bus
class MotorBus(ABC):
    """Half-duplex servo bus over a serial line; backends supply framing and byte order.

    One bus drives servos of one model (`config.model`). Calls are serialised by a lock, so a
    bus may be shared between threads. Not re-entrant across processes.
    """

    kind: ClassVar[str] = ""
    models: ClassVar[Mapping[str, ServoModel]] = {}
    default_model: ClassVar[str] = ""
    address_size: ClassVar[int] = 1  # bytes of an address/length field in READ/WRITE/SYNC params
    REFUSING_FLAGS: ClassVar[frozenset[str]] = frozenset()  # error flags: command not executed

    def __init__(self, config: BusConfig, serial_port: SerialLike | None = None):
        if config.kind != self.kind:
            raise DriverConfigError(f"{type(self).__name__} serves kind {self.kind!r}, "
                              f"config asks for {config.kind!r}")
        name = config.model or self.default_model
        if name not in self.models:
            raise DriverConfigError(f"unknown {self.kind} model {name!r}; "
                                    f"known: {sorted(self.models)}")
        self.config = config
        self.model = self.models[name]
        self.stats = BusStats()
        self.last_flags: dict[int, tuple[str, ...]] = {}  # id -> flags of its latest status
        self._serial = serial_port
        self._owns_serial = serial_port is None
        if serial_port is not None and getattr(serial_port, "timeout", 0) is None:
            serial_port.timeout = self.poll_s  # a blocking read would never see the deadline
        self._lock = threading.RLock()

    # -- backend hooks
    @abstractmethod
    def build_packet(self, servo_id: int, instruction: int, params: bytes) -> bytes:
        """Instruction packet bytes, exactly as written to the line."""

    @abstractmethod
    def status_scanner(self, n_params: int) -> FrameScanner:
        """A scanner for status packets carrying `n_params` data bytes."""

    @abstractmethod
    def int_to_bytes(self, raw: int, size: int) -> bytes:
        """Unsigned register integer -> `size` wire bytes in the model's byte order."""

    @abstractmethod
    def bytes_to_int(self, data: bytes) -> int:
        """Wire bytes -> unsigned register integer."""

    @abstractmethod
    def ping(self, servo_id: int) -> int:
        """Model number of `servo_id`; raises BusTimeoutError when it does not answer."""

    # -- lifecycle
    def open(self) -> MotorBus:
        if self._serial is None:
            if not self.config.port:
                raise DriverConfigError("BusConfig.port is empty and no serial object was given")
            try:
                self._serial = serial.Serial(self.config.port, self.config.baudrate,
                                             timeout=self.poll_s)
            except (OSError, ValueError) as exc:
                raise DeviceError(f"cannot open serial port {self.config.port}: {exc}") from exc
        return self

    def close(self) -> None:
        if self._serial is not None and self._owns_serial:
            self._serial.close()
            self._serial = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def __enter__(self) -> MotorBus:
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- values
    def encode(self, reg: str | Register, value: int) -> bytes:
        r = self.model.register(reg)
        return self.int_to_bytes(r.to_raw(value), r.size)

    def decode(self, reg: str | Register, data: bytes) -> int:
        r = self.model.register(reg)
        if len(data) != r.size:
            raise BusProtocolError(None, "bad_length",
                                   f"{r.name}: {len(data)} bytes, want {r.size}")
        return r.from_raw(self.bytes_to_int(data))

    def _field(self, value: int) -> bytes:
        return int(value).to_bytes(self.address_size, "little")

    # -- instructions
    def read(self, servo_id: int, reg: str | Register) -> int:
        r = self.model.register(reg)
        return self.decode(r, self.read_raw(servo_id, r.address, r.size))

    def read_raw(self, servo_id: int, address: int, length: int) -> bytes:
        status = self.transact(servo_id, Instruction.READ,
                               self._field(address) + self._field(length), length)
        return status.params

    def write(self, servo_id: int, reg: str | Register, value: int) -> None:
        r = self.model.register(reg)
        self.write_raw(servo_id, r.address, self.encode(r, value))

    def reg_write(self, servo_id: int, reg: str | Register, value: int) -> None:
        """Stage a write that takes effect at the next `action`."""
        r = self.model.register(reg)
        self.write_raw(servo_id, r.address, self.encode(r, value), Instruction.REG_WRITE)

    def write_raw(self, servo_id: int, address: int, data: bytes,
                  instruction: int = Instruction.WRITE) -> None:
        self.transact(servo_id, instruction, self._field(address) + bytes(data), 0)

    def action(self, servo_id: int = BROADCAST_ID) -> None:
        self.transact(servo_id, Instruction.ACTION, b"", 0)

    def sync_write(self, reg: str | Register, values: Mapping[int, int]) -> None:
        """One broadcast packet writing `values[id]` to `reg` of every id (no replies)."""
        r = self.model.register(reg)
        if not values:
            raise DriverConfigError("sync_write needs at least one id")
        params = self._field(r.address) + self._field(r.size) + b"".join(
            bytes((sid,)) + self.encode(r, value) for sid, value in values.items())
        with self._lock:
            self._send(self.build_packet(BROADCAST_ID, Instruction.SYNC_WRITE, params))

    def sync_read(self, reg: str | Register, ids: Iterable[int]) -> dict[int, int]:
        """One broadcast request; every listed id answers with `reg` (ids kept in order)."""
        r = self.model.register(reg)
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise DriverConfigError("sync_read needs at least one id")
        head = self._field(r.address) + self._field(r.size)

        def packet(pending: list[int]) -> bytes:
            return self.build_packet(BROADCAST_ID, Instruction.SYNC_READ, head + bytes(pending))

        statuses = self._exchange(packet, ids, r.size)
        return {sid: self.decode(r, statuses[sid].params) for sid in ids}

    def enable_torque(self, ids: Iterable[int]) -> None:
        self.sync_write("Torque_Enable", dict.fromkeys(ids, 1))

    def disable_torque(self, ids: Iterable[int]) -> None:
        self.sync_write("Torque_Enable", dict.fromkeys(ids, 0))

    def read_positions(self, ids: Iterable[int]) -> dict[int, float]:
        """Present positions in radians (0 at the model's centre step)."""
        steps = self.sync_read("Present_Position", ids)
        return {sid: self.model.to_radians(value) for sid, value in steps.items()}

    def write_positions(self, goals: Mapping[int, float]) -> None:
        """Goal positions in radians, one sync write."""
        steps = {sid: self.model.to_steps(rad) for sid, rad in goals.items()}
        self.sync_write("Goal_Position", steps)

    # -- transactions
    def transact(self, servo_id: int, instruction: int, params: bytes = b"",
                 reply_params: int = 0, check: bool = True) -> Status | None:
        """Send one packet; for a unicast id return its status (None for broadcast).
        `check=False` returns a status with error bits instead of raising."""
        packet = self.build_packet(servo_id, instruction, params)
        if servo_id == BROADCAST_ID:
            with self._lock:
                self._send(packet)
            return None
        return self._exchange(lambda _pending: packet, [servo_id], reply_params,
                              check)[servo_id]

    def _exchange(self, make_packet: Callable[[list[int]], bytes], ids: list[int],
                  n_params: int, check: bool = True) -> dict[int, Status]:
        got: dict[int, Status] = {}
        pending, reason = list(ids), None
        attempts = self.config.retries + 1
        with self._lock:
            for attempt in range(attempts):
                if attempt:
                    self.stats.retries += 1
                self._send(make_packet(pending))
                statuses, reason = self._collect(pending, n_params)
                got.update(statuses)
                pending = [sid for sid in pending if sid not in got]
                if not pending:
                    break
                if reason:
                    self.stats.protocol_errors += 1
                else:
                    self.stats.timeouts += 1
        if pending and reason:
            raise BusProtocolError(pending[0], reason, f"no valid status from ids {pending} "
                                                       f"after {attempts} attempt(s)")
        if pending:
            raise BusTimeoutError(pending[0], tuple(pending), attempts)
        for sid in ids:
            self._check(got[sid], check)
        return got

    def _collect(self, ids: list[int], n_params: int) -> tuple[dict[int, Status], str | None]:
        """Statuses of `ids` read before the deadline, and the reason of a corrupt reply (if
        one of `ids` sent a complete but invalid frame). Stops early once every id answered."""
        scanner = self.status_scanner(n_params)
        wanted, got, corrupt = set(ids), {}, {}
        deadline = time.monotonic() + self.config.timeout_s
        while len(got) + len(corrupt.keys() - got.keys()) < len(wanted):
            if time.monotonic() >= deadline:
                break
            for item in scanner.feed(self._read_chunk()):
                if isinstance(item, Status) and item.servo_id in wanted:
                    if len(item.params) == n_params or item.error:
                        got[item.servo_id] = item
                    else:  # a well-formed frame of the wrong size answers another request
                        corrupt.setdefault(item.servo_id, "bad_length")
                elif isinstance(item, Rejection):
                    self.stats.rejected_frames += 1
                    if item.complete and item.servo_id in wanted:
                        corrupt.setdefault(item.servo_id, item.reason)
        reasons = [corrupt[sid] for sid in ids if sid in corrupt and sid not in got]
        return got, (reasons[0] if reasons else None)

    def _check(self, status: Status, check: bool) -> None:
        self.last_flags[status.servo_id] = status.flags
        if not status.error:
            return
        self.stats.faults += 1
        refused = self.REFUSING_FLAGS.intersection(status.flags)
        if check and (self.config.raise_on_fault or refused):
            raise ServoFaultError(status.servo_id, status.error,
                                  status.flags + self.fault_details(status))

    def fault_details(self, status: Status) -> tuple[str, ...]:
        """Extra flags explaining a status error (a backend may query the servo)."""
        return ()

    def _send(self, packet: bytes) -> None:
        port = self.serial
        try:
            port.reset_input_buffer()  # stale bytes (late replies) must not answer this packet
            port.write(packet)
        except OSError as exc:
            raise DeviceError(f"write to {self.config.port or 'serial'} failed: {exc}") from exc
        self.stats.packets += 1

    @property
    def poll_s(self) -> float:
        """pyserial read timeout: a read returns as soon as a byte arrives, so this only bounds
        how far a wait may overshoot the reply deadline. Fixed at open: changing a pyserial
        timeout re-applies every termios setting of the port."""
        return min(self.config.timeout_s, 0.005)

    def _read_chunk(self) -> bytes:
        port = self.serial
        try:
            return port.read(max(1, port.in_waiting))
        except OSError as exc:
            raise DeviceError(f"read from {self.config.port or 'serial'} failed: {exc}") from exc

    @property
    def serial(self) -> SerialLike:
        if self._serial is None:
            raise DeviceError(f"{self.kind} bus is not open; call open() first")
        return self._serial
