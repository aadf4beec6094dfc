"""DynamixelBus: Protocol 2.0 servos (X series) over a pyserial line or an injected object.

Wire behaviour matches the vendor SDK (`dynamixel_sdk`, checked byte for byte in
tests/test_hw_sdk_identity.py): 2-byte little-endian address and length fields, byte stuffing,
sync read 0x82 `[aL aH lL lH ids...]` with one status per id. `ping` returns the model number
carried by the PING status. One deliberate difference on the read side: the SDK never waits
for the status of a unicast ACTION (it discards it at the next transmit), this bus reads it,
so error bits are surfaced and no stale status can answer a later request.
Error numbers (result_fail, instruction, crc, data_range, data_length, data_limit, access)
mean the servo refused the command: they always raise `ServoFaultError`. The hardware alert
bit raises only with `raise_on_fault`; `read_hardware_errors` names its cause.
"""

from __future__ import annotations

from llara_drivers.base import MotorBus, register_bus
from llara_drivers.dynamixel import protocol
from llara_drivers.dynamixel.registers import MODELS
from llara_drivers.servo_wire import FrameScanner, Instruction, Status


@register_bus("dynamixel")
class DynamixelBus(MotorBus):
    models = MODELS
    default_model = "xl330-m288"
    address_size = 2
    REFUSING_FLAGS = frozenset(protocol.ERROR_NUMBERS.values())

    def build_packet(self, servo_id: int, instruction: int, params: bytes) -> bytes:
        return protocol.build_packet(servo_id, instruction, params)

    def status_scanner(self, n_params: int) -> FrameScanner:
        return protocol.status_scanner(n_params)

    def int_to_bytes(self, raw: int, size: int) -> bytes:
        return protocol.int_to_bytes(raw, size)

    def bytes_to_int(self, data: bytes) -> int:
        return protocol.bytes_to_int(data)

    def ping(self, servo_id: int) -> int:
        """Model number from the PING status (params: model L/H, firmware version)."""
        status = self.transact(servo_id, Instruction.PING, b"", 3)
        return int.from_bytes(status.params[:2], "little")

    def read_hardware_errors(self, servo_id: int) -> tuple[str, ...]:
        """Names of the bits set in Hardware_Error_Status (why the alert bit is on); reads
        even while the alert bit is set."""
        reg = self.model.register("Hardware_Error_Status")
        status = self.transact(servo_id, Instruction.READ,
                               self._field(reg.address) + self._field(reg.size), reg.size,
                               check=False)
        return protocol.decode_hardware_error(self.decode(reg, status.params))

    def fault_details(self, status: Status) -> tuple[str, ...]:
        """With the alert bit set, name the hardware errors (one extra READ)."""
        if not status.error & protocol.ALERT_BIT:
            return ()
        return self.read_hardware_errors(status.servo_id)
