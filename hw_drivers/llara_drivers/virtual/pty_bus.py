"""VirtualServoBus: simulated Feetech or Dynamixel servos answering on a pseudo-terminal.

Contract:
- `VirtualServoBus(protocol, ids)` opens `pty.openpty()` and serves the master side from a
  background thread; `port` is the slave's real device path (e.g. /dev/pts/3), which the
  ordinary drivers open with pyserial, so tests and the simulator exercise real packets.
- Requests are framed with the protocol's instruction scanner (garbage is skipped) and answered
  by `Responder` like real servos (status packets, sync-read replies in order, no reply to
  broadcasts). Each servo keeps its register memory (`servos[id]`).
- Simulator hook: `goal_positions()`, `torque_enabled()`, `set_present_positions(...)` and
  `on_write` (called from the server thread with (id, address, data) after every applied
  write). With `external_motion=True` servos never move by themselves.
- Fault injection (`faults`, a `FaultConfig` that may be replaced or edited at any time) acts on
  each reply packet: drop, corrupt one byte after the length field, delay, write byte by
  byte, prefix garbage, keep some ids silent; `set_fault(id, bits)` raises status error bits.
- `close()` stops the thread and closes every descriptor it opened (also via `with`).
"""

from __future__ import annotations

import os
import pty
import random
import select
import threading
import tty
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from llara_drivers.errors import DeviceError, DriverConfigError
from llara_drivers.servo_wire import Packet
from llara_drivers.virtual.servo import ADAPTERS, Responder, VirtualServo


@dataclass
class FaultConfig:
    """Faults applied to reply packets. Counters (`*_next`) are consumed one per reply."""

    drop_next: int = 0  # drop the next N replies
    corrupt_next: int = 0  # flip one byte (after the length field) in the next N replies
    drop_prob: float = 0.0  # probability of dropping any reply
    corrupt_prob: float = 0.0  # probability of corrupting any reply
    delay_s: float = 0.0  # wait before each reply
    byte_gap_s: float = 0.0  # > 0: write replies byte by byte with this gap
    garbage: bytes = b""  # noise written before each reply
    silent_ids: set[int] = field(default_factory=set)  # ids that never answer
    seed: int = 0

    def __post_init__(self):
        for name in ("drop_prob", "corrupt_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise DriverConfigError(f"FaultConfig.{name} must be in [0, 1]")
        if min(self.drop_next, self.corrupt_next, self.delay_s, self.byte_gap_s) < 0:
            raise DriverConfigError("FaultConfig counters and delays must be >= 0")
        self.rng = random.Random(self.seed)

    def decide(self, servo_id: int) -> tuple[bool, bool]:
        """(drop, corrupt) for the next reply of `servo_id`; consumes counters."""
        if servo_id in self.silent_ids:
            return True, False
        if self.drop_next > 0:
            self.drop_next -= 1
            return True, False
        if self.drop_prob and self.rng.random() < self.drop_prob:
            return True, False
        if self.corrupt_next > 0:
            self.corrupt_next -= 1
            return False, True
        return False, bool(self.corrupt_prob and self.rng.random() < self.corrupt_prob)


class VirtualServoBus:
    """A pty that answers like a bus of real servos of one protocol and model."""

    def __init__(self, protocol: str = "feetech", ids: Iterable[int] = (1, 2, 3, 4, 5, 6),
                 model: str = "", *, speed_steps_s: float = 3000.0,
                 external_motion: bool = False, faults: FaultConfig | None = None):
        if protocol not in ADAPTERS:
            raise DriverConfigError(f"unknown protocol {protocol!r}; known: {sorted(ADAPTERS)}")
        self.protocol = protocol
        self.adapter = adapter = ADAPTERS[protocol]
        name = model or adapter.default_model
        if name not in adapter.models:
            raise DriverConfigError(f"unknown {protocol} model {name!r}")
        self.model = adapter.models[name]
        ids = list(dict.fromkeys(ids))
        if not ids or not all(0 <= i <= 0xFD for i in ids):
            raise DriverConfigError(f"servo ids must be in [0, 253], got {ids}")
        codec = adapter.codec(self.model)
        self.servos = {i: VirtualServo(i, self.model, codec, adapter.memory_size, speed_steps_s,
                                       external_motion) for i in ids}
        for servo in self.servos.values():
            servo.on_write = self._notify
        self.faults = faults or FaultConfig()
        self.on_write: Callable[[int, int, bytes], None] | None = None
        self.requests = 0  # instruction packets answered (or deliberately not)
        self.rejected = 0  # frame candidates the scanner refused (noise, bad checksum)
        self._responder = Responder(adapter, list(self.servos.values()))
        self._scanner = adapter.instruction_scanner()
        self.thread_error: DeviceError | None = None  # why the server thread stopped early
        self._lock = threading.Lock()
        self._served = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._closed = False
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation: bytes pass untouched
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"virtual-{protocol}-bus")
        self._thread.start()

    # -- lifecycle
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        os.write(self._wake_w, b"\0")
        self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> VirtualServoBus:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- simulator hook
    def goal_positions(self) -> dict[int, int]:
        with self._lock:
            return {i: s.value("Goal_Position") for i, s in self.servos.items()}

    def present_positions(self) -> dict[int, int]:
        with self._lock:
            for servo in self.servos.values():
                servo.advance()
            return {i: s.value("Present_Position") for i, s in self.servos.items()}

    def torque_enabled(self) -> dict[int, bool]:
        with self._lock:
            return {i: bool(s.value("Torque_Enable")) for i, s in self.servos.items()}

    def set_present_positions(self, steps: Mapping[int, int]) -> None:
        with self._lock:
            for servo_id, value in steps.items():
                self.servos[servo_id].set_value("Present_Position", int(value))

    def set_fault(self, servo_id: int, bits: int) -> None:
        """Raise status error bits (Feetech: error byte; Dynamixel: Hardware_Error_Status,
        which sets the alert bit); 0 clears them."""
        with self._lock:
            self.adapter.set_fault(self.servos[servo_id], bits)

    def wait_requests(self, count: int, timeout_s: float = 1.0) -> bool:
        """Block until `count` instruction packets have been served (broadcasts get no reply,
        so this is how a caller knows one took effect); False on timeout."""
        with self._served:
            return self._served.wait_for(lambda: self.requests >= count, timeout_s)

    def _notify(self, servo_id: int, address: int, data: bytes) -> None:
        if self.on_write is not None:
            self.on_write(servo_id, address, data)

    # -- server thread
    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master, self._wake_r], [], [], 1.0)
            if self._wake_r in ready or self._master not in ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:  # EIO while no client holds the slave open; retry shortly
                self._stop.wait(0.01)
                continue
            for item in self._scanner.feed(data):
                if isinstance(item, Packet):
                    self._answer(item)
                else:
                    self.rejected += 1

    def _answer(self, packet: Packet) -> None:
        with self._lock:
            replies = self._responder.answer(packet)
            self.requests += 1
            self._served.notify_all()
        for servo_id, reply in replies:
            self._emit(servo_id, reply)

    def _emit(self, servo_id: int, reply: bytes) -> None:
        faults = self.faults
        drop, corrupt = faults.decide(servo_id)
        if drop:
            return
        if corrupt:
            data = bytearray(reply)
            data[faults.rng.randrange(self.adapter.payload_start, len(data))] ^= 0xFF
            reply = bytes(data)
        if faults.delay_s and self._stop.wait(faults.delay_s):
            return
        out = faults.garbage + reply
        try:
            if faults.byte_gap_s <= 0:
                os.write(self._master, out)
                return
            for byte in out:
                os.write(self._master, bytes((byte,)))
                if self._stop.wait(faults.byte_gap_s):
                    return
        except OSError as exc:
            if not self._stop.is_set():
                self.thread_error = DeviceError(f"virtual bus {self.port}: write failed: {exc}")
                self._stop.set()
