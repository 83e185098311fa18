"""Unitree G1 (`hg`) LowCmd / LowState as bytes: the C struct layout the robot's DDS topic carries.

LowCmd_ (1004 bytes, natural alignment): mode_pr u8, mode_machine u8, 2 pad, 35 x MotorCmd_
{mode u8, 3 pad, q f32, dq f32, tau f32, kp f32, kd f32, reserve u32} (28 bytes each), reserve u32[4],
crc u32. The CRC is Unitree's crc32_core over the struct's little-endian u32 words before `crc`:
polynomial 0x04C11DB7, init 0xFFFFFFFF, MSB first, no reflection, no final xor, which equals
CRC-32/MPEG-2 over each word's bytes in big-endian order (a table per byte here; the test checks it
against the bitwise algorithm). The velocity field is `dq` (some public scripts set `qd`, which the
robot ignores). `mode_machine` must be copied from the LowState.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

N_SLOTS = 35
_MOTOR = struct.Struct("<B3x5fI")
_HEAD = struct.Struct("<BB2x")
_TAIL = struct.Struct("<4I")
LOWCMD_SIZE = _HEAD.size + N_SLOTS * _MOTOR.size + _TAIL.size + 4
assert LOWCMD_SIZE == 1004
POLY = 0x04C11DB7


def _table() -> np.ndarray:
    t = np.zeros(256, dtype=np.uint32)
    for b in range(256):
        c = b << 24
        for _ in range(8):
            c = ((c << 1) ^ POLY) & 0xFFFFFFFF if c & 0x80000000 else (c << 1) & 0xFFFFFFFF
        t[b] = c
    return t


_CRC_TABLE = [int(x) for x in _table()]


def crc32_core(words_le: bytes) -> int:
    """Unitree's CRC over little-endian u32 words (len % 4 == 0)."""
    if len(words_le) % 4:
        raise ValueError(f"CRC input must be whole u32 words, got {len(words_le)} bytes")
    be = np.frombuffer(words_le, dtype="<u4").astype(">u4").tobytes()
    crc = 0xFFFFFFFF
    tab = _CRC_TABLE
    for byte in be:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ tab[(crc >> 24) ^ byte]
    return crc


@dataclass
class LowCmd:
    mode_pr: int = 0
    mode_machine: int = 0
    mode: np.ndarray = field(default_factory=lambda: np.full(N_SLOTS, -1, dtype=np.int64))  # -1 = unset
    q: np.ndarray = field(default_factory=lambda: np.full(N_SLOTS, np.nan))
    dq: np.ndarray = field(default_factory=lambda: np.full(N_SLOTS, np.nan))
    tau: np.ndarray = field(default_factory=lambda: np.full(N_SLOTS, np.nan))
    kp: np.ndarray = field(default_factory=lambda: np.full(N_SLOTS, np.nan))
    kd: np.ndarray = field(default_factory=lambda: np.full(N_SLOTS, np.nan))

    def unset_slots(self) -> list[int]:
        bad = (self.mode < 0) | ~np.isfinite(self.q) | ~np.isfinite(self.dq) | ~np.isfinite(self.tau) \
            | ~np.isfinite(self.kp) | ~np.isfinite(self.kd)
        return [int(i) for i in np.flatnonzero(bad)]

    def pack(self) -> bytes:
        unset = self.unset_slots()
        if unset:
            raise ValueError(f"LowCmd motor slots {unset} are unset; every one of the {N_SLOTS} slots must be set")
        body = bytearray(_HEAD.pack(self.mode_pr, self.mode_machine))
        for i in range(N_SLOTS):
            body += _MOTOR.pack(int(self.mode[i]), self.q[i], self.dq[i], self.tau[i], self.kp[i], self.kd[i], 0)
        body += _TAIL.pack(0, 0, 0, 0)
        return bytes(body) + struct.pack("<I", crc32_core(bytes(body)))

    @classmethod
    def unpack(cls, data: bytes) -> "LowCmd":
        if len(data) != LOWCMD_SIZE:
            raise ValueError(f"LowCmd is {LOWCMD_SIZE} bytes, got {len(data)}")
        crc = struct.unpack_from("<I", data, LOWCMD_SIZE - 4)[0]
        want = crc32_core(data[:-4])
        if crc != want:
            raise ValueError(f"LowCmd CRC mismatch: 0x{crc:08x} in the message, 0x{want:08x} computed")
        mode_pr, mode_machine = _HEAD.unpack_from(data, 0)
        out = cls(mode_pr, mode_machine)
        for i in range(N_SLOTS):
            m, q, dq, tau, kp, kd, _ = _MOTOR.unpack_from(data, _HEAD.size + i * _MOTOR.size)
            out.mode[i], out.q[i], out.dq[i], out.tau[i], out.kp[i], out.kd[i] = m, q, dq, tau, kp, kd
        return out


@dataclass
class LowState:
    """What the runtime reads from the robot each cycle (motor order, 29 used of 35)."""

    tick: int
    q: np.ndarray  # (35,) [rad]
    dq: np.ndarray  # (35,) [rad/s]
    imu_quat_wxyz: np.ndarray  # (4,)
    imu_gyro_b: np.ndarray  # (3,) [rad/s], body frame
    mode_machine: int = 0
    tau_est: np.ndarray | None = None
