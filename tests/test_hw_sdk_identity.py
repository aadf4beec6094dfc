"""Our servo packets are byte-identical to the vendors' SDKs.

References: `feetech-servo-sdk` (module scservo_sdk) and `dynamixel-sdk` (module
dynamixel_sdk), both from PyPI (dev extra). The SDKs and our buses each drive a `FakeLine`, a
serial-like object that records every byte written and answers each instruction with a
deterministic status packet (same bytes for both clients). For thousands of random commands
(ping, read and write of 1/2/4 bytes, reg write, action, sync write and sync read with random
id sets and data) we assert that the bytes written are identical and that the values decoded
from the same replies are identical.

SDK quirks handled explicitly:
- scservo_sdk keeps the byte order in a module global (`SCS_END`, set by
  `PacketHandler(protocol_end)`: 0 = STS little-endian, 1 = SCS big-endian), so STS and SCS
  handlers cannot coexist; each phase sets it and the fixture restores 0. In SCS order a 4-byte
  value is sent low word first, each word big-endian; our `int_to_bytes` matches that.
- scservo_sdk's `ping` sends PING and then READ(3, 2) for the model number; so does ours.
- dynamixel_sdk never reads the status of a unicast ACTION (it flushes it at the next
  transmit); our bus reads it. Only the read side differs: the bytes written are identical.
- dynamixel_sdk 4.1.0 does not byte-stuff what it transmits: `txPacket` calls
  `self.addStuffing(txpacket)` and ignores the result, and `addStuffing` builds a new list
  whenever it inserts a byte, so a packet containing `FF FF FD` goes out unstuffed (LEN and CRC
  of the unstuffed bytes), against the protocol (FORMATS.md §6). Our packets are stuffed.
  For those packets we compare with what the SDK means to send: its own `addStuffing` result
  with the CRC recomputed by its own `updateCRC` (`sdk_intended`); every other packet is
  compared with the raw SDK bytes. The test counts both kinds.
- dynamixel_sdk's `removeStuffing` compacts the list in place while it still reads the
  bytes it has overwritten, so for some payloads with several `FF FF FD` runs it is not the
  inverse of `addStuffing`; `unstuff(stuff(x)) == x` is asserted for ours, and ours must equal
  the SDK's result wherever the SDK's own round trip is lossless.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llara_drivers.base import BusConfig, make_bus
from llara_drivers.dynamixel import protocol as dxl
from llara_drivers.feetech import protocol as ft
from llara_drivers.servo_wire import BROADCAST_ID, Instruction, Packet, Register

scs = pytest.importorskip("scservo_sdk")
dsdk = pytest.importorskip("dynamixel_sdk")

KINDS = ("ping", "read", "write", "reg_write", "action", "sync_write", "sync_read")


class FakeLine:
    """Serial-like line: records writes, answers instruction packets through `replies`."""

    def __init__(self, scanner, replies):
        self.scanner = scanner
        self.replies = replies
        self.written = bytearray()
        self.rx = bytearray()
        self.timeout = 0.0

    def write(self, data) -> int:
        data = bytes(data)
        self.written += data
        for item in self.scanner.feed(data):
            if isinstance(item, Packet):
                self.rx += self.replies(item)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        out = bytes(self.rx[:size])
        del self.rx[:size]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def reset_input_buffer(self) -> None:
        self.rx.clear()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def reply_data(servo_id: int, address: int, length: int, stuffing: bool) -> bytes:
    """Deterministic register bytes; with `stuffing`, often starting with FF FF FD."""
    rng = random.Random(servo_id * 1_000_003 + address * 7 + length)
    data = bytes(rng.randrange(256) for _ in range(length))
    if stuffing and length == 4 and rng.random() < 0.3:
        data = b"\xff\xff\xfd" + data[3:]
    return data


def make_replies(build_status, address_size: int, stuffing: bool):
    """Status packets real servos would send (error byte 0) for one instruction packet."""

    def fields(params: bytes, count: int) -> list[int]:
        return [int.from_bytes(params[i * address_size:(i + 1) * address_size], "little")
                for i in range(count)]

    def replies(pkt: Packet) -> bytes:
        if pkt.instruction == Instruction.SYNC_READ:
            address, length = fields(pkt.params, 2)
            ids = pkt.params[2 * address_size:]
            return b"".join(build_status(i, 0, reply_data(i, address, length, stuffing))
                            for i in ids)
        if pkt.servo_id == BROADCAST_ID:
            return b""
        if pkt.instruction == Instruction.READ:
            address, length = fields(pkt.params, 2)
            return build_status(pkt.servo_id, 0, reply_data(pkt.servo_id, address, length,
                                                            stuffing))
        if pkt.instruction == Instruction.PING and address_size == 2:
            return build_status(pkt.servo_id, 0, bytes((0xB0, 0x04, 0x2D)))
        return build_status(pkt.servo_id, 0, b"")

    return replies


def random_command(rng: random.Random, max_address: int, stuffing: bool) -> tuple:
    kind = rng.choice(KINDS)
    size = rng.choice((1, 2, 4))
    address = rng.randrange(0, max_address + 1)
    if stuffing and rng.random() < 0.1:
        address = 0xFFFF  # address bytes FF FF, then FD data -> stuffing across fields

    def value() -> int:
        if stuffing and size == 4 and rng.random() < 0.2:
            return 0x00FDFFFF | (rng.randrange(256) << 24)
        if stuffing and rng.random() < 0.1:
            return 0xFD  # after an address of FF FF
        return rng.randrange(1 << (8 * size))

    servo_id = rng.randrange(0, 253)
    if kind == "action" and rng.random() < 0.3:
        servo_id = BROADCAST_ID
    ids = rng.sample(range(0, 253), rng.randint(1, 12))
    return kind, servo_id, address, size, value(), ids, [value() for _ in ids]


# ----------------------------------------------------------------------------- SDK runners
def sdk_bytes(lo, hi, loword, hiword, value: int, size: int) -> list[int]:
    """How the SDK examples split a value with the SDK's own macros."""
    if size == 1:
        return [value]
    if size == 2:
        return [lo(value), hi(value)]
    return [lo(loword(value)), hi(loword(value)), lo(hiword(value)), hi(hiword(value))]


def run_sdk(sdk, ph, port, cmd, split, success):
    kind, sid, address, size, value, ids, values = cmd
    if kind == "ping":
        model, result, _ = ph.ping(port, sid)
        assert result == success
        return model
    if kind == "read":
        read = {1: ph.read1ByteTxRx, 2: ph.read2ByteTxRx, 4: ph.read4ByteTxRx}[size]
        data, result, _ = read(port, sid, address)
        assert result == success
        return data
    if kind == "write":
        write = {1: ph.write1ByteTxRx, 2: ph.write2ByteTxRx, 4: ph.write4ByteTxRx}[size]
        assert write(port, sid, address, value)[0] == success
    elif kind == "reg_write":
        assert ph.regWriteTxRx(port, sid, address, size, split(value, size))[0] == success
    elif kind == "action":
        ph.action(port, sid)
    elif kind == "sync_write":
        group = sdk.GroupSyncWrite(port, ph, address, size)
        for i, v in zip(ids, values, strict=True):
            assert group.addParam(i, split(v, size))
        assert group.txPacket() == success
    elif kind == "sync_read":
        group = sdk.GroupSyncRead(port, ph, address, size)
        for i in ids:
            group.addParam(i)
        assert group.txRxPacket() == success
        return {i: group.getData(i, address, size) for i in ids}
    return None


def run_ours(bus, cmd):
    kind, sid, address, size, value, ids, values = cmd
    reg = Register("probe", address, size)
    calls = {
        "ping": lambda: bus.ping(sid),
        "read": lambda: bus.read(sid, reg),
        "write": lambda: bus.write(sid, reg, value),
        "reg_write": lambda: bus.reg_write(sid, reg, value),
        "action": lambda: bus.action(sid),
        "sync_write": lambda: bus.sync_write(reg, dict(zip(ids, values, strict=True))),
        "sync_read": lambda: bus.sync_read(reg, ids),
    }
    return calls[kind]()


def sdk_intended(ph, packet: bytes) -> bytes:
    """The Dynamixel packet the SDK means to send: its own `addStuffing` result (which its
    `txPacket` drops, see the module docstring) with the CRC recomputed by `updateCRC`."""
    stuffed = ph.addStuffing(list(packet))
    total = (stuffed[5] | stuffed[6] << 8) + 7
    crc = ph.updateCRC(0, stuffed, total - 2)
    return bytes(stuffed[:total - 2]) + bytes((crc & 0xFF, crc >> 8))


def compare(n: int, seed: int, sdk_side, our_side, max_address: int, intended=None) -> Counter:
    """Run `n` random commands through both clients; assert identical bytes and values.
    `intended` maps the SDK's written bytes to the expected ones (Dynamixel stuffing)."""
    rng = random.Random(seed)
    (sdk_line, sdk_call), (our_line, bus) = sdk_side, our_side
    kinds: Counter = Counter()
    for _ in range(n):
        cmd = random_command(rng, max_address, intended is not None)
        sdk_line.written.clear()
        our_line.written.clear()
        expected = sdk_call(cmd)
        got = run_ours(bus, cmd)
        want = bytes(sdk_line.written)
        if intended is not None and intended(want) != want:
            want = intended(want)
            kinds["stuffed"] += 1
        else:
            kinds["raw_identical"] += 1
        assert bytes(our_line.written) == want, cmd
        assert got == expected, cmd
        kinds[cmd[0]] += 1
    return kinds


# ----------------------------------------------------------------------------- tests
@pytest.fixture
def scs_end_restored():
    yield
    scs.PacketHandler(0)  # SCS_END is process-global: leave it at the STS default


def sdk_port(module, line):
    port = module.PortHandler("fake-line")
    port.ser, port.is_open, port.tx_time_per_byte = line, True, 0.01
    return port


@pytest.mark.parametrize(("model", "end", "n", "seed"), [("sts3215", 0, 1500, 1),
                                                         ("scs0009", 1, 1000, 2)])
def test_feetech_packets_identical_to_scservo_sdk(model, end, n, seed, scs_end_restored):
    big = end == 1
    build = ft.build_status
    sdk_line = FakeLine(ft.instruction_scanner(), make_replies(build, 1, False))
    our_line = FakeLine(ft.instruction_scanner(), make_replies(build, 1, False))
    ph = scs.PacketHandler(end)
    port = sdk_port(scs, sdk_line)

    def split(value, size):
        return sdk_bytes(scs.SCS_LOBYTE, scs.SCS_HIBYTE, scs.SCS_LOWORD, scs.SCS_HIWORD,
                         value, size)

    bus = make_bus(BusConfig(kind="feetech", model=model, timeout_s=0.02, retries=0), our_line)
    assert bus.model.big_endian is big
    kinds = compare(n, seed, (sdk_line, lambda c: run_sdk(scs, ph, port, c, split,
                                                          scs.COMM_SUCCESS)),
                    (our_line, bus), 250)
    assert sum(kinds[k] for k in KINDS) == n
    assert min(kinds[k] for k in KINDS) > n // 14


def test_dynamixel_packets_identical_to_dynamixel_sdk():
    n = 1500
    build = dxl.build_status
    sdk_line = FakeLine(dxl.instruction_scanner(), make_replies(build, 2, True))
    our_line = FakeLine(dxl.instruction_scanner(), make_replies(build, 2, True))
    ph = dsdk.PacketHandler(2.0)
    port = sdk_port(dsdk, sdk_line)

    def split(value, size):
        return sdk_bytes(dsdk.DXL_LOBYTE, dsdk.DXL_HIBYTE, dsdk.DXL_LOWORD, dsdk.DXL_HIWORD,
                         value, size)

    bus = make_bus(BusConfig(kind="dynamixel", timeout_s=0.02, retries=0), our_line)
    kinds = compare(n, 3, (sdk_line, lambda c: run_sdk(dsdk, ph, port, c, split,
                                                       dsdk.COMM_SUCCESS)),
                    (our_line, bus), 1000, lambda raw: sdk_intended(ph, raw))
    assert sum(kinds[k] for k in KINDS) == n
    assert min(kinds[k] for k in KINDS) > n // 14
    assert kinds["stuffed"] > 50  # byte stuffing was exercised, not just possible
    assert kinds["raw_identical"] > n - 400


def test_crc_and_stuffing_identical_to_dynamixel_sdk():
    ph = dsdk.PacketHandler(2.0)
    rng = random.Random(4)
    counts = Counter()
    for _ in range(3000):
        # bytes drawn mostly from {FF, FD, 00} so stuffing patterns are frequent
        payload = bytes(rng.choice((0xFF, 0xFF, 0xFD, 0x00, rng.randrange(256)))
                        for _ in range(rng.randint(1, 40)))
        assert dxl.crc16(payload) == ph.updateCRC(0, list(payload), len(payload))
        length = len(payload) + 2
        packet = [0xFF, 0xFF, 0xFD, 0x00, 1, length & 0xFF, length >> 8, *payload, 0, 0]
        stuffed = ph.addStuffing(packet)
        assert bytes(stuffed[7:-2]) == dxl.stuff(payload)
        assert dxl.unstuff(dxl.stuff(payload)) == payload
        restored = ph.removeStuffing(list(stuffed))
        sdk_unstuffed = bytes(restored[7:7 + (restored[5] | restored[6] << 8) - 2])
        counts["stuffed"] += len(stuffed) != len(packet)
        if sdk_unstuffed == payload:
            counts["sdk_lossless"] += 1
            assert dxl.unstuff(bytes(stuffed[7:-2])) == sdk_unstuffed
    assert counts["stuffed"] > 1000
    assert counts["sdk_lossless"] > 2500
