"""Simulated servos: register memory, motion, and the servo side of both wire protocols.

Contract:
- `VirtualServo` keeps one servo's control table as wire bytes (`memory`), initialised from
  its `ServoModel` (model number, id, centre position, plausible voltage and temperature).
  With torque on, Present_Position moves toward Goal_Position at `speed_steps_s` (computed
  lazily from a monotonic clock), unless `external_motion` is set: then a simulator reads the
  goals and writes present positions itself (`set_value`). Writing the ID register renumbers
  the servo, like the real thing.
- `Responder` answers one decoded instruction packet for a group of servos the way real
  servos do: a status packet to every unicast instruction, none to broadcasts (except PING),
  sync-read replies one per listed id in list order, REG_WRITE staged until ACTION.
  Protocol differences live in a `WireAdapter`; `ADAPTERS` holds "feetech" and "dynamixel".
  A Dynamixel servo refuses bad requests with an error number (access, instruction, data
  length); a Feetech servo ignores writes to read-only registers and stays silent on unknown
  instructions.
- Not thread-safe by itself: `VirtualServoBus` serialises access with its lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from llara_drivers.dynamixel import protocol as dxl
from llara_drivers.dynamixel.registers import MODELS as DXL_MODELS
from llara_drivers.feetech import protocol as ft
from llara_drivers.feetech.registers import MODELS as FT_MODELS
from llara_drivers.servo_wire import BROADCAST_ID, FrameScanner, Instruction, Packet, ServoModel

# Registers set at power-up when the model has them (register units).
POWER_UP_VALUES = {"Present_Voltage": 120, "Present_Input_Voltage": 120,
                   "Present_Temperature": 30, "Firmware_Version": 45,
                   "Max_Position_Limit": 4095, "Status_Return_Level": 2,
                   "Response_Status_Level": 1}

Codec = tuple[Callable[[int, int], bytes], Callable[[bytes], int]]  # (raw, size) -> bytes; inverse


class VirtualServo:
    """Register memory of one servo plus first-order motion toward the goal."""

    def __init__(self, servo_id: int, model: ServoModel, codec: Codec, memory_size: int,
                 speed_steps_s: float = 3000.0, external_motion: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.model = model
        self.memory = bytearray(memory_size)
        self.speed_steps_s = speed_steps_s
        self.external_motion = external_motion
        self.fault_bits = 0  # status error bits raised on purpose (see WireAdapter.set_fault)
        self.pending: tuple[int, bytes] | None = None  # REG_WRITE staged until ACTION
        self.on_write: Callable[[int, int, bytes], None] | None = None  # (id, address, data)
        self._to_bytes, self._from_bytes = codec
        self._clock = clock
        self._last = clock()
        self._readonly = [(r.address, r.address + r.size) for r in model.registers.values()
                          if not r.writable]
        self.set_value("Model_Number", model.model_number)
        self.set_value("ID", servo_id)
        for name, value in POWER_UP_VALUES.items():
            if name in model.registers:
                self.set_value(name, value)
        self.set_value("Goal_Position", model.centre)
        self.set_value("Present_Position", model.centre)

    @property
    def servo_id(self) -> int:
        return self.memory[self.model.register("ID").address]

    # -- register access by name (no access checks: simulator side)
    def value(self, name: str) -> int:
        reg = self.model.register(name)
        return reg.from_raw(self._from_bytes(self.memory[reg.address: reg.address + reg.size]))

    def set_value(self, name: str, value: int) -> None:
        reg = self.model.register(name)
        self.memory[reg.address: reg.address + reg.size] = self._to_bytes(reg.to_raw(value),
                                                                          reg.size)
        if name == "Present_Position":
            self._position = float(value)

    # -- wire access (what instructions do)
    def read(self, address: int, length: int) -> bytes | None:
        """Memory bytes, or None when the range leaves the control table."""
        if address + length > len(self.memory):
            return None
        self.advance()
        return bytes(self.memory[address: address + length])

    def writable(self, address: int, length: int) -> bool:
        end = address + length
        return end <= len(self.memory) and not any(
            address < r_end and r_start < end for r_start, r_end in self._readonly)

    def write(self, address: int, data: bytes) -> None:
        """Store `data` (caller checked `writable`) and notify the simulator hook."""
        self.advance()
        servo_id = self.servo_id
        self.memory[address: address + len(data)] = data
        if self.on_write is not None:
            self.on_write(servo_id, address, bytes(data))

    def action(self) -> None:
        if self.pending is not None:
            self.write(*self.pending)
            self.pending = None

    def advance(self) -> None:
        """Move Present_Position toward Goal_Position for the time since the last call."""
        now = self._clock()
        dt, self._last = now - self._last, now
        if self.external_motion:
            return
        goal = self.value("Goal_Position")
        if self.value("Torque_Enable"):
            step = self.speed_steps_s * dt
            self._position += max(-step, min(step, goal - self._position))
        present = round(self._position)
        reg = self.model.register("Present_Position")
        self.memory[reg.address: reg.address + reg.size] = self._to_bytes(reg.to_raw(present),
                                                                          reg.size)
        if "Moving" in self.model.registers:
            self.set_value("Moving", int(present != goal and bool(self.value("Torque_Enable"))))


@dataclass(frozen=True)
class WireAdapter:
    """What differs between protocols on the servo side."""

    address_size: int  # bytes of address / length fields in instruction params
    memory_size: int  # control-table bytes per servo
    payload_start: int  # first byte after header, id and LEN (fault injection corrupts after)
    models: dict[str, ServoModel]
    default_model: str
    codec: Callable[[ServoModel], Codec]
    build_status: Callable[[int, int, bytes], bytes]
    instruction_scanner: Callable[[], FrameScanner]
    ping_params: Callable[[VirtualServo], bytes]
    error_byte: Callable[[VirtualServo, str | None], int | None]  # None: stay silent
    set_fault: Callable[[VirtualServo, int], None]


def _ft_error(servo: VirtualServo, reason: str | None) -> int | None:
    return None if reason == "instruction" else servo.fault_bits


def _ft_fault(servo: VirtualServo, bits: int) -> None:
    servo.fault_bits = bits
    servo.set_value("Status", bits)


_DXL_ERROR_NUMBERS = {name: number for number, name in dxl.ERROR_NUMBERS.items()}


def _dxl_error(servo: VirtualServo, reason: str | None) -> int:
    alert = dxl.ALERT_BIT if servo.value("Hardware_Error_Status") else 0
    return alert | _DXL_ERROR_NUMBERS.get(reason, 0)


def _dxl_fault(servo: VirtualServo, bits: int) -> None:
    servo.set_value("Hardware_Error_Status", bits)


def _dxl_ping(servo: VirtualServo) -> bytes:
    firmware = servo.value("Firmware_Version")
    return servo.model.model_number.to_bytes(2, "little") + bytes((firmware,))


ADAPTERS = {
    "feetech": WireAdapter(
        address_size=1, memory_size=256, payload_start=4, models=FT_MODELS,
        default_model="sts3215",
        codec=lambda m: (lambda raw, size: ft.int_to_bytes(raw, size, m.big_endian),
                         lambda data: ft.bytes_to_int(data, m.big_endian)),
        build_status=ft.build_status, instruction_scanner=ft.instruction_scanner,
        ping_params=lambda servo: b"", error_byte=_ft_error, set_fault=_ft_fault),
    "dynamixel": WireAdapter(
        address_size=2, memory_size=1024, payload_start=7, models=DXL_MODELS,
        default_model="xl330-m288", codec=lambda m: (dxl.int_to_bytes, dxl.bytes_to_int),
        build_status=dxl.build_status, instruction_scanner=dxl.instruction_scanner,
        ping_params=_dxl_ping, error_byte=_dxl_error, set_fault=_dxl_fault),
}

Reply = tuple[int, bytes]  # (servo id, status packet bytes)


class Responder:
    """Answers instruction packets for a group of servos sharing one line."""

    def __init__(self, adapter: WireAdapter, servos: list[VirtualServo]):
        self.adapter = adapter
        self.servos = servos
        self._handlers = {
            Instruction.PING: self._ping, Instruction.READ: self._read,
            Instruction.WRITE: self._write, Instruction.REG_WRITE: self._write,
            Instruction.ACTION: self._action, Instruction.SYNC_WRITE: self._sync_write,
            Instruction.SYNC_READ: self._sync_read,
        }

    def answer(self, packet: Packet) -> list[Reply]:
        handler = self._handlers.get(packet.instruction)
        if handler is None:
            return [self._status(s, "instruction") for s in self._targets(packet, unicast=True)]
        return [reply for reply in handler(packet) if reply[1]]

    # -- helpers
    def find(self, servo_id: int) -> VirtualServo | None:
        return next((s for s in self.servos if s.servo_id == servo_id), None)

    def _targets(self, packet: Packet, unicast: bool = False) -> list[VirtualServo]:
        if packet.servo_id == BROADCAST_ID:
            return [] if unicast else sorted(self.servos, key=lambda s: s.servo_id)
        servo = self.find(packet.servo_id)
        return [servo] if servo is not None else []

    def _status(self, servo: VirtualServo, reason: str | None = None, data: bytes = b"",
                servo_id: int | None = None) -> Reply:
        """Status from `servo` (answering as `servo_id`, the id it had when addressed)."""
        servo_id = servo.servo_id if servo_id is None else servo_id
        error = self.adapter.error_byte(servo, reason)
        if error is None:
            return servo_id, b""
        return servo_id, self.adapter.build_status(servo_id, error,
                                                   data if reason is None else b"")

    def _fields(self, params: bytes, count: int) -> tuple[list[int], bytes] | None:
        """Split `count` address-size fields off the front of `params`."""
        size = self.adapter.address_size
        if len(params) < count * size:
            return None
        fields = [int.from_bytes(params[i * size:(i + 1) * size], "little") for i in range(count)]
        return fields, params[count * size:]

    # -- instructions
    def _ping(self, packet: Packet) -> list[Reply]:
        return [self._status(s, data=self.adapter.ping_params(s)) for s in self._targets(packet)]

    def _read(self, packet: Packet) -> list[Reply]:
        parsed = self._fields(packet.params, 2)
        replies = []
        for servo in self._targets(packet, unicast=True):
            if parsed is None or parsed[1]:
                replies.append(self._status(servo, "data_length"))
                continue
            (address, length), _ = parsed
            data = servo.read(address, length)
            replies.append(self._status(servo, "access") if data is None
                           else self._status(servo, data=data))
        return replies

    def _write(self, packet: Packet) -> list[Reply]:
        parsed = self._fields(packet.params, 1)
        replies = []
        for servo in self._targets(packet):
            servo_id = servo.servo_id  # a write to ID answers under the old id
            if parsed is None or not parsed[1]:
                reason = "data_length"
            elif not servo.writable(parsed[0][0], len(parsed[1])):
                reason = "access"
            else:
                reason = None
                if packet.instruction == Instruction.REG_WRITE:
                    servo.pending = (parsed[0][0], parsed[1])
                else:
                    servo.write(parsed[0][0], parsed[1])
            if packet.servo_id != BROADCAST_ID:
                replies.append(self._status(servo, reason, servo_id=servo_id))
        return replies

    def _action(self, packet: Packet) -> list[Reply]:
        targets = self._targets(packet)
        for servo in targets:
            servo.action()
        return [] if packet.servo_id == BROADCAST_ID else [self._status(s) for s in targets]

    def _sync_write(self, packet: Packet) -> list[Reply]:
        parsed = self._fields(packet.params, 2)
        if packet.servo_id != BROADCAST_ID or parsed is None or parsed[0][1] == 0:
            return []
        (address, length), body = parsed
        for start in range(0, len(body) - length, length + 1):
            servo = self.find(body[start])
            data = body[start + 1: start + 1 + length]
            if servo is not None and len(data) == length and servo.writable(address, length):
                servo.write(address, data)
        return []

    def _sync_read(self, packet: Packet) -> list[Reply]:
        parsed = self._fields(packet.params, 2)
        if packet.servo_id != BROADCAST_ID or parsed is None:
            return []
        (address, length), ids = parsed
        replies = []
        for servo_id in ids:
            servo = self.find(servo_id)
            if servo is not None:
                data = servo.read(address, length)
                replies.append(self._status(servo, "access") if data is None
                               else self._status(servo, data=data))
        return replies
