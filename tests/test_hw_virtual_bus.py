"""The pty virtual servo bus, driven through a REAL serial device path by our drivers.

Every test opens `VirtualServoBus(...).port` (a /dev/pts/N path) with pyserial through
`make_bus`, so packets cross a real tty. Covers ping/read/write/sync, motion toward the goal,
REG_WRITE/ACTION, the simulator hook, fault injection (corrupt byte -> ProtocolError then a
retry succeeds; dropped reply -> timeout -> DeviceError after retries; error bits -> flags),
clean shutdown, and the vendors' SDKs as independent clients of the virtual servos.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from llara_drivers.base import BusConfig, make_bus
from llara_drivers.errors import DeviceError, DriverConfigError, ProtocolError
from llara_drivers.servo_wire import BusTimeoutError, Instruction, ServoFaultError
from llara_drivers.virtual.pty_bus import FaultConfig, VirtualServoBus

PROTOCOLS = ("feetech", "dynamixel")
IDS = (1, 2, 3)


def broadcast(virtual: VirtualServoBus, call, *args) -> None:
    """Run a bus call that sends one broadcast packet (no reply) and wait until the virtual
    servos have served it."""
    served = virtual.requests
    call(*args)
    assert virtual.wait_requests(served + 1)


@pytest.fixture(params=PROTOCOLS)
def rig(request):
    """(virtual bus, our driver opened on its device path)."""
    with VirtualServoBus(request.param, IDS, speed_steps_s=20_000.0) as virtual:
        config = BusConfig(kind=request.param, port=virtual.port, timeout_s=0.03, retries=0)
        with make_bus(config) as bus:
            yield virtual, bus


def test_port_is_a_real_tty(rig):
    virtual, bus = rig
    assert virtual.port.startswith("/dev/") and os.path.exists(virtual.port)
    assert type(bus.serial).__module__.startswith("serial")


def test_ping_read_write_sync(rig):
    virtual, bus = rig
    assert bus.ping(2) == virtual.model.model_number
    assert bus.read(3, "Present_Position") == 2048
    bus.write(1, "Torque_Enable", 1)
    assert bus.read(1, "Torque_Enable") == 1
    assert virtual.torque_enabled() == {1: True, 2: False, 3: False}
    broadcast(virtual, bus.sync_write, "Goal_Position", {1: 1000, 2: 3000, 3: 2500})
    assert virtual.goal_positions() == {1: 1000, 2: 3000, 3: 2500}
    assert bus.sync_read("Goal_Position", [3, 1, 2]) == {3: 2500, 1: 1000, 2: 3000}
    with pytest.raises(BusTimeoutError):
        bus.ping(9)  # nobody there


def test_present_moves_toward_goal_only_with_torque(rig):
    virtual, bus = rig
    bus.sync_write("Goal_Position", {1: 3000, 2: 1000})
    bus.enable_torque([1])
    time.sleep(0.03)
    first = bus.sync_read("Present_Position", [1, 2])
    assert 2048 < first[1] <= 3000 and first[2] == 2048  # servo 2 has torque off
    time.sleep(0.1)  # 20k steps/s: the 952-step move is over
    assert bus.read(1, "Present_Position") == 3000
    assert bus.read_positions([1])[1] == pytest.approx(virtual.model.to_radians(3000))
    broadcast(virtual, bus.write_positions, {1: 0.0})
    assert virtual.goal_positions()[1] == 2048


def test_reg_write_waits_for_action(rig):
    virtual, bus = rig
    bus.reg_write(1, "Goal_Position", 1111)
    bus.reg_write(2, "Goal_Position", 2222)
    assert virtual.goal_positions()[1] == 2048
    bus.action(1)
    assert virtual.goal_positions() == {1: 1111, 2: 2048, 3: 2048}
    broadcast(virtual, bus.action)  # no reply; servo 2 applies its staged write
    assert virtual.goal_positions()[2] == 2222


def test_simulator_hook(rig):
    virtual, bus = rig
    for servo in virtual.servos.values():
        servo.external_motion = True
    writes = []
    virtual.on_write = lambda sid, addr, data: writes.append((sid, addr, data))
    bus.enable_torque(IDS)
    bus.write(2, "Goal_Position", 3333)
    time.sleep(0.02)
    assert bus.read(2, "Present_Position") == 2048  # external motion: the sim moves it
    virtual.set_present_positions({2: 3300})
    assert bus.sync_read("Present_Position", [2]) == {2: 3300}
    goal = virtual.model.register("Goal_Position")
    assert (2, goal.address, bus.encode(goal, 3333)) in writes


def test_id_register_renumbers_servo(rig):
    virtual, bus = rig
    bus.write(3, "ID", 7)
    assert bus.ping(7) == virtual.model.model_number
    with pytest.raises(BusTimeoutError):
        bus.ping(3)


# ----------------------------------------------------------------------------- faults
def test_corrupt_byte_raises_then_retry_succeeds(rig):
    virtual, bus = rig
    virtual.faults.corrupt_next = 1
    with pytest.raises(ProtocolError) as info:
        bus.read(1, "Present_Position")
    assert info.value.servo_id == 1 and info.value.reason in ("bad_checksum", "bad_crc")
    virtual.faults.corrupt_next = 1
    bus.config.retries = 2
    assert bus.read(1, "Present_Position") == 2048
    assert bus.stats.retries == 1 and bus.stats.protocol_errors == 2


def test_dropped_reply_times_out_then_device_error(rig):
    virtual, bus = rig
    virtual.faults.drop_next = 1
    bus.config.retries = 1
    assert bus.read(2, "Torque_Enable") == 0  # first reply dropped, retry answered
    assert bus.stats.timeouts == 1
    virtual.faults.silent_ids = {2}
    bus.config.retries = 2
    start = time.monotonic()
    with pytest.raises(DeviceError) as info:
        bus.read(2, "Torque_Enable")
    assert isinstance(info.value, BusTimeoutError) and info.value.attempts == 3
    assert 0.085 < time.monotonic() - start < 1.0
    assert bus.sync_read("Torque_Enable", [1, 3]) == {1: 0, 3: 0}  # the others still answer


def test_error_bits_surface(rig):
    virtual, bus = rig
    virtual.set_fault(1, 0x20)  # overload bit in both protocols
    with pytest.raises(ServoFaultError) as info:
        bus.read(1, "Present_Position")
    assert "overload" in info.value.flags and info.value.servo_id == 1
    bus.config.raise_on_fault = False
    assert bus.read(1, "Present_Position") == 2048
    assert bus.last_flags[1] in (("overload",), ("hardware_alert",))
    virtual.set_fault(1, 0)
    bus.config.raise_on_fault = True
    assert bus.read(1, "Present_Position") == 2048 and bus.last_flags[1] == ()


def test_noise_delays_and_byte_gaps(rig):
    virtual, bus = rig
    bus.config.timeout_s = 0.2
    virtual.faults = FaultConfig(garbage=b"\xff\x00\xff\xff\x13", byte_gap_s=0.0005,
                                 delay_s=0.002)
    assert bus.sync_read("Present_Position", list(IDS)) == dict.fromkeys(IDS, 2048)
    assert bus.ping(1) == virtual.model.model_number


def test_late_reply_never_answers_a_later_request(rig):
    virtual, bus = rig
    virtual.faults.delay_s = 0.12
    with pytest.raises(BusTimeoutError):
        bus.read(1, "Present_Position")  # its reply arrives 90 ms after the deadline
    virtual.faults.delay_s = 0.0
    bus.config.retries = 3
    bus.config.timeout_s = 0.1
    assert bus.read(1, "Torque_Enable") == 0


def test_random_faults_soak(rig):
    virtual, bus = rig
    virtual.faults = FaultConfig(drop_prob=0.1, corrupt_prob=0.1, seed=5)
    bus.config.retries = 6
    for step in range(40):
        goal = 1500 + 10 * step
        bus.write(1, "Goal_Position", goal)
        assert bus.read(1, "Goal_Position") == goal
    assert bus.stats.retries > 0


def test_dynamixel_refusals():
    with VirtualServoBus("dynamixel", [1]) as virtual:
        config = BusConfig(kind="dynamixel", port=virtual.port, timeout_s=0.03, retries=0,
                           raise_on_fault=False)
        with make_bus(config) as bus:
            with pytest.raises(ServoFaultError) as info:
                bus.write(1, "Present_Position", 5)  # read-only
            assert info.value.flags == ("access",)
            with pytest.raises(ServoFaultError) as info:
                bus.read_raw(1, 1020, 8)  # beyond the control table
            assert info.value.flags == ("access",)
            with pytest.raises(ServoFaultError) as info:
                bus.transact(1, 0x77, b"", 0)
            assert info.value.flags == ("instruction",)
            assert bus.read(1, "Present_Position") == 2048


def test_feetech_ignores_readonly_writes_and_unknown_instructions():
    with VirtualServoBus("feetech", [1]) as virtual:
        config = BusConfig(kind="feetech", port=virtual.port, timeout_s=0.03, retries=0)
        with make_bus(config) as bus:
            bus.write_raw(1, 56, b"\x05\x00")  # Present_Position: ignored, normal status
            assert bus.read(1, "Present_Position") == 2048
            with pytest.raises(BusTimeoutError):
                bus.transact(1, 0x77, b"", 0)
            assert bus.transact(1, Instruction.PING).servo_id == 1


# ----------------------------------------------------------------------------- lifecycle
def test_clean_shutdown_leaks_nothing():
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before_fds, before_threads = fds(), threading.active_count()
    for protocol in PROTOCOLS * 2:
        virtual = VirtualServoBus(protocol, [1])
        with make_bus(BusConfig(kind=protocol, port=virtual.port, timeout_s=0.03)) as bus:
            bus.ping(1)
        virtual.close()
        virtual.close()  # idempotent
        assert not virtual.running
    assert threading.active_count() == before_threads
    assert fds() == before_fds


def test_virtual_bus_config_errors():
    with pytest.raises(DriverConfigError):
        VirtualServoBus("canbus", [1])
    with pytest.raises(DriverConfigError):
        VirtualServoBus("feetech", [300])
    with pytest.raises(DriverConfigError):
        VirtualServoBus("dynamixel", [1], model="sts3215")
    with pytest.raises(DriverConfigError):
        FaultConfig(drop_prob=1.5)


# ----------------------------------------------------------------------------- vendor SDKs
def test_scservo_sdk_talks_to_virtual_bus():
    scs = pytest.importorskip("scservo_sdk")
    with VirtualServoBus("feetech", [1, 2]) as virtual:
        port = scs.PortHandler(virtual.port)
        assert port.openPort()
        try:
            ph = scs.PacketHandler(0)
            assert ph.ping(port, 2)[:2] == (777, scs.COMM_SUCCESS)
            assert ph.write2ByteTxRx(port, 1, 42, 1234) == (scs.COMM_SUCCESS, 0)
            assert ph.read2ByteTxRx(port, 1, 42) == (1234, scs.COMM_SUCCESS, 0)
            group = scs.GroupSyncRead(port, ph, 56, 2)
            assert group.addParam(1) and group.addParam(2)
            assert group.txRxPacket() == scs.COMM_SUCCESS
            assert group.getData(2, 56, 2) == 2048
        finally:
            port.closePort()
        assert virtual.goal_positions()[1] == 1234


def test_dynamixel_sdk_talks_to_virtual_bus():
    dsdk = pytest.importorskip("dynamixel_sdk")
    with VirtualServoBus("dynamixel", [1, 2], model="xm430-w350") as virtual:
        port = dsdk.PortHandler(virtual.port)
        assert port.openPort()
        try:
            ph = dsdk.PacketHandler(2.0)
            assert ph.ping(port, 1)[:2] == (1020, dsdk.COMM_SUCCESS)
            assert ph.write4ByteTxRx(port, 2, 116, 0x00FDFFFF) == (dsdk.COMM_SUCCESS, 0)
            assert ph.read4ByteTxRx(port, 2, 116) == (0x00FDFFFF, dsdk.COMM_SUCCESS, 0)
            assert ph.write1ByteTxRx(port, 1, 132, 1)[1] == 0x07  # read-only: access error
            group = dsdk.GroupSyncRead(port, ph, 132, 4)
            assert group.addParam(1) and group.addParam(2)
            assert group.txRxPacket() == dsdk.COMM_SUCCESS
            assert group.getData(1, 132, 4) == 2048
        finally:
            port.closePort()
