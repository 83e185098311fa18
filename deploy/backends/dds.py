"""`dds` backend (optional extra): Unitree hg LowCmd / LowState over CycloneDDS (`rt/lowcmd`, `rt/lowstate`).

Needs `cyclonedds==0.10.2` built against Debian's `cyclonedds-dev` and `unitree-sdk2py-dimos==1.0.3`,
both `--no-deps` (requirements-dds.txt says how); PyPI's `unitree-sdk2` 1.0.1 imports a `b2` module it
does not ship.

Receive: every LowState's `crc` is checked (Unitree's crc32_core over the packed hg LowState_, packed as
unitree_sdk2py's CRC helper packs it); a bad one is dropped and counted in `crc_errors`, so read_state
keeps returning the last good state and, if only bad ones come, the runtime's stale-tick check takes over.
The check costs ~0.3 ms of Python per LowState here (x86 core), on the DDS reader thread.
read_state waits up to `wait_s` for the first LowState, then raises DeployError saying what to check.
Send: the CRC is ours (deploy.lowcmd) over the bytes `LowCmd.pack()` produces; `mode_machine` is copied
from the newest LowState; the velocity field is `dq`. Field types are Unitree's (u8 mode / mode_machine,
u32 tick / crc): nothing here narrows or sign-flips them.

Tested (tests/deploy/test_dds.py) over CycloneDDS on `lo` against a fake G1 in another process that
uses unitree_sdk2py's own CRC helper: the first-state wait and its timeout, the state round trip (tick
past 2^31, mode_machine past 127), bad-CRC states dropped and counted, and a `build_lowcmd` command
received with its values and a CRC the robot side verifies. The test skips, saying why, where
cyclonedds-dev is not installed or no registry is reachable to build the binding.
"""

from __future__ import annotations

import socket
import struct
import threading

import numpy as np

from deploy.lowcmd import N_SLOTS, LowCmd, LowState, crc32_core
from deploy.runtime import DeployError

STATE_TOPIC, CMD_TOPIC = "rt/lowstate", "rt/lowcmd"
# hg LowState_ as a C struct (little-endian, natural alignment), the layout its `crc` is computed over:
# version u32[2], mode_pr u8, mode_machine u8, tick u32, imu {quaternion f32[4], gyroscope f32[3],
# accelerometer f32[3], rpy f32[3], temperature i16}; 35 x MotorState_ {mode u8, q, dq, ddq, tau_est f32,
# temperature i16[2], vol f32, sensor u32[2], motorstate u32, reserve u32[4]}; wireless_remote u8[40],
# reserve u32[4], crc u32.
_STATE_HEAD = struct.Struct("<2I2B2xI13fh2x")
_MOTOR_STATE = struct.Struct("<B3x4f2hf7I")
_STATE_TAIL = struct.Struct("<40B4I")
LOWSTATE_SIZE = _STATE_HEAD.size + N_SLOTS * _MOTOR_STATE.size + _STATE_TAIL.size + 4
assert LOWSTATE_SIZE == 2092

_factory: tuple[int, str] | None = None  # unitree_sdk2py's ChannelFactory is one per process


def lowstate_crc(msg) -> int:
    """Unitree's CRC of an hg LowState_ message: crc32_core over the struct before its `crc` field."""
    imu = msg.imu_state
    body = bytearray(_STATE_HEAD.pack(*msg.version, msg.mode_pr, msg.mode_machine, msg.tick, *imu.quaternion,
                                      *imu.gyroscope, *imu.accelerometer, *imu.rpy, imu.temperature))
    for m in msg.motor_state:
        body += _MOTOR_STATE.pack(m.mode, m.q, m.dq, m.ddq, m.tau_est, *m.temperature, m.vol, *m.sensor,
                                  m.motorstate, *m.reserve)
    body += _STATE_TAIL.pack(*msg.wireless_remote, *msg.reserve)
    return crc32_core(bytes(body))


def to_lowstate(msg) -> LowState:
    """hg LowState_ -> LowState (motor order; tick and mode_machine kept as the unsigned ints they are)."""
    motors = msg.motor_state
    if len(motors) != N_SLOTS:
        raise ValueError(f"hg LowState_ has {N_SLOTS} motor_state slots, got {len(motors)}")
    return LowState(tick=int(msg.tick), q=np.array([m.q for m in motors]), dq=np.array([m.dq for m in motors]),
                    imu_quat_wxyz=np.array(msg.imu_state.quaternion, dtype=np.float64),
                    imu_gyro_b=np.array(msg.imu_state.gyroscope, dtype=np.float64),
                    mode_machine=int(msg.mode_machine), tau_est=np.array([m.tau_est for m in motors]))


def fill_lowcmd(msg, cmd: LowCmd):
    """Write `cmd` into an hg LowCmd_ message with the CRC over `cmd.pack()`, the same bytes; returns msg."""
    data = cmd.pack()  # refuses unset slots and out-of-range u8 fields before anything reaches the wire
    msg.mode_pr, msg.mode_machine = int(cmd.mode_pr), int(cmd.mode_machine)
    for i, m in enumerate(msg.motor_cmd):
        m.mode, m.q, m.dq, m.tau = int(cmd.mode[i]), float(cmd.q[i]), float(cmd.dq[i]), float(cmd.tau[i])
        m.kp, m.kd, m.reserve = float(cmd.kp[i]), float(cmd.kd[i]), 0
    msg.reserve = [0, 0, 0, 0]
    msg.crc = crc32_core(data[:-4])
    return msg


class LowStateInbox:
    """The newest LowState whose CRC checks out, filled from the DDS reader thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._latest: LowState | None = None
        self.crc_errors = 0  # LowStates dropped for a CRC that does not match their bytes
        self.decode_errors = 0  # LowStates dropped because they could not be packed or converted

    def put(self, msg) -> None:
        # never raises: an exception here would end unitree_sdk2py's reader thread and every later state
        try:
            good = lowstate_crc(msg) == msg.crc
            state = to_lowstate(msg) if good else None
        except Exception:  # whatever the sample holds: dropped and counted, the thread lives on
            with self._lock:
                self.decode_errors += 1
            return
        with self._lock:
            if state is None:
                self.crc_errors += 1
                return
            self._latest = state
        self._first.set()

    def get(self, wait_s: float) -> LowState | None:
        """The newest good LowState; waits up to `wait_s` [s] for the first one (None if none came)."""
        self._first.wait(wait_s)
        with self._lock:
            return self._latest


class DdsBackend:
    """deploy.runtime.Backend over Unitree's DDS topics on one network interface."""

    def __init__(self, interface: str = "lo", domain: int = 0, wait_s: float = 2.0) -> None:
        """interface: the NIC wired to the robot (G1: the one on 192.168.123.x); domain: DDS domain id;
        wait_s: how long the first read_state waits for the first LowState [s]."""
        global _factory
        try:
            from unitree_sdk2py.core.channel import ChannelFactoryInitialize, ChannelPublisher, ChannelSubscriber
            from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowCmd_
            from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_
        except ImportError as e:
            raise DeployError("--backend dds needs cyclonedds==0.10.2 built against cyclonedds-dev and "
                              "unitree-sdk2py-dimos==1.0.3, both --no-deps: see requirements-dds.txt "
                              f"({e})") from e
        if _factory not in (None, (domain, interface)):
            raise DeployError(f"this process already joined DDS domain {_factory[0]} on {_factory[1]!r}; "
                              f"unitree_sdk2py allows one per process, got domain {domain} on {interface!r}")
        try:
            ChannelFactoryInitialize(domain, interface)
        except Exception as e:  # unitree_sdk2py raises a bare Exception("channel factory init error.")
            names = [n for _, n in socket.if_nameindex()]
            raise DeployError(f"cannot join DDS domain {domain} on interface {interface!r} ({e}): expected one "
                              f"of this machine's interfaces {names}") from e
        _factory = (domain, interface)
        self.interface, self.domain, self.wait_s = interface, domain, wait_s
        self._closed = False
        self._new_cmd = unitree_hg_msg_dds__LowCmd_
        self.inbox = LowStateInbox()
        self.pub = ChannelPublisher(CMD_TOPIC, LowCmd_)
        self.pub.Init()
        self.sub = ChannelSubscriber(STATE_TOPIC, LowState_)
        self.sub.Init(self.inbox.put, 10)

    @property
    def crc_errors(self) -> int:
        return self.inbox.crc_errors

    def read_state(self) -> LowState:
        state = self.inbox.get(self.wait_s)
        if state is None:
            box = self.inbox
            hint = ("states arrive but none verifies: check the robot sends hg LowState_ (a G1)"
                    if box.crc_errors + box.decode_errors else
                    "check the robot is on, that this interface is the one wired to it (`ip -br addr`: "
                    "192.168.123.x on a G1) and that the domain id matches")
            raise DeployError(f"no valid LowState on {STATE_TOPIC!r} within {self.wait_s} s (DDS domain "
                              f"{self.domain}, interface {self.interface!r}; {box.crc_errors} dropped for a bad CRC, "
                              f"{box.decode_errors} undecodable): {hint}")
        return state

    def send(self, cmd: LowCmd) -> None:
        # unitree_sdk2py prints a DDS write error and returns False: raise, so the runtime's fault path runs
        if not self.pub.Write(fill_lowcmd(self._new_cmd(), cmd)):
            raise DeployError(f"DDS write of LowCmd on {CMD_TOPIC!r} failed (domain {self.domain}, "
                              f"interface {self.interface!r})")

    def close(self) -> None:
        if not self._closed:  # unitree_sdk2py's Close fails when called twice
            self._closed = True
            self.sub.Close()
            self.pub.Close()
