"""FeetechBus: STS/SCS servos over a pyserial line (or an injected serial-like object).

Wire behaviour matches the vendor SDK (`scservo_sdk`, checked byte for byte in
tests/test_hw_sdk_identity.py): `ping` sends PING and then READs Model_Number (address 3,
2 bytes) like `PacketHandler.ping`; READ/WRITE params use 1-byte address and length; sync read
is instruction 0x82 with params `[addr, len, ids...]`, every listed servo answering with its
own status packet. The byte order comes from the model (STS little-endian, SCS big-endian).
All Feetech status error bits are hardware conditions (voltage, angle sensor, overheat,
overcurrent, overload): they raise `ServoFaultError` only if `raise_on_fault` is set.
"""

from __future__ import annotations

from llara_drivers.base import MotorBus, register_bus
from llara_drivers.feetech import protocol
from llara_drivers.feetech.registers import MODELS
from llara_drivers.servo_wire import FrameScanner, Instruction


@register_bus("feetech")
class FeetechBus(MotorBus):
    models = MODELS
    default_model = "sts3215"
    address_size = 1

    def build_packet(self, servo_id: int, instruction: int, params: bytes) -> bytes:
        return protocol.build_packet(servo_id, instruction, params)

    def status_scanner(self, n_params: int) -> FrameScanner:
        return protocol.status_scanner(n_params)

    def int_to_bytes(self, raw: int, size: int) -> bytes:
        return protocol.int_to_bytes(raw, size, self.model.big_endian)

    def bytes_to_int(self, data: bytes) -> int:
        return protocol.bytes_to_int(data, self.model.big_endian)

    def ping(self, servo_id: int) -> int:
        """PING, then READ Model_Number (what scservo_sdk's ping does)."""
        self.transact(servo_id, Instruction.PING, b"", 0)
        return self.read(servo_id, "Model_Number")
