"""llara_drivers (the hw_drivers/ component): the hardware behind llara-edge's runtime.

Serial servo buses (written from the wire protocols over pyserial):
- `base`: `BusConfig`, the `MotorBus` transaction engine, the registry (`make_bus`,
  `register_bus`); `servo_wire`: instruction codes, frames, `FrameScanner`, registers, errors.
- `feetech`: STS/SCS protocol, control tables, `FeetechBus` (SO-100 / SO-101, STS3215).
- `dynamixel`: Protocol 2.0 (CRC-16, byte stuffing), X-series table, `DynamixelBus`.
- `virtual`: `VirtualServoBus`, simulated servos answering on a pty, with fault injection.

Typical use: `make_bus(BusConfig(kind="feetech", port="/dev/ttyACM0")).open()`.
"""
