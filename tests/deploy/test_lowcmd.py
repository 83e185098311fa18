"""hg LowCmd bytes and CRC against Unitree's bitwise algorithm, written out here independently."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from deploy.lowcmd import LOWCMD_SIZE, N_SLOTS, LowCmd, crc32_core
from deploy.runtime import build_lowcmd
from robomirror import g1_contract as g1


def unitree_crc32_core(words: list[int]) -> int:
    """Unitree's crc32_core, bit by bit, as in its C SDK."""
    crc, poly = 0xFFFFFFFF, 0x04C11DB7
    for data in words:
        xbit = 1 << 31
        for _ in range(32):
            if crc & 0x80000000:
                crc = ((crc << 1) & 0xFFFFFFFF) ^ poly
            else:
                crc = (crc << 1) & 0xFFFFFFFF
            if data & xbit:
                crc ^= poly
            xbit >>= 1
    return crc


def _cmd(seed: int) -> LowCmd:
    rng = np.random.default_rng(seed)
    c = LowCmd(mode_pr=1, mode_machine=int(rng.integers(0, 5)))
    c.mode[:] = rng.integers(0, 2, N_SLOTS)
    for a in (c.q, c.dq, c.tau, c.kp, c.kd):
        a[:] = rng.normal(size=N_SLOTS).astype(np.float32)
    return c


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crc_matches_unitree_bitwise_on_random_commands(seed):
    data = _cmd(seed).pack()
    assert len(data) == LOWCMD_SIZE == 1004
    words = list(struct.unpack(f"<{LOWCMD_SIZE // 4}I", data))
    assert words[-1] == unitree_crc32_core(words[:-1]) == crc32_core(data[:-4])


def test_known_vector_and_layout_offsets():
    assert unitree_crc32_core([0]) == crc32_core(b"\0\0\0\0")
    assert crc32_core(b"\x01\x00\x00\x00") == unitree_crc32_core([1])
    c = _cmd(3)
    data = c.pack()
    # motor 2's q sits at 4 (header + pad) + 2 * 28 + 4 (mode + pad); dq right after it
    q2, dq2 = struct.unpack_from("<2f", data, 4 + 2 * 28 + 4)
    assert np.float32(q2) == np.float32(c.q[2]) and np.float32(dq2) == np.float32(c.dq[2])
    assert data[1] == c.mode_machine


def test_round_trip_and_corruption_is_caught():
    c = _cmd(4)
    back = LowCmd.unpack(c.pack())
    assert np.array_equal(back.mode, c.mode) and np.allclose(back.kp, c.kp)
    bad = bytearray(c.pack())
    bad[100] ^= 0xFF
    with pytest.raises(ValueError, match="CRC"):
        LowCmd.unpack(bytes(bad))


def test_every_slot_must_be_set_and_the_runtime_sets_all_35():
    c = LowCmd()
    with pytest.raises(ValueError, match="unset"):
        c.pack()
    cmd = build_lowcmd(g1.DEFAULT_JOINT_POS_RAD, g1.KP, g1.KD, mode_machine=3)
    assert cmd.unset_slots() == [] and cmd.mode_machine == 3
    assert np.allclose(cmd.q[g1.POLICY_TO_MOTOR], g1.DEFAULT_JOINT_POS_RAD)
    assert np.allclose(cmd.kp[g1.LOCKED_TO_MOTOR], g1.LOCKED_KP) and np.all(cmd.kp[29:] == 0)
    cmd.kd[30] = np.nan
    with pytest.raises(ValueError, match="30"):
        cmd.pack()
