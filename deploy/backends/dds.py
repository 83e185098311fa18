"""`dds` backend (optional extra): Unitree hg LowCmd / LowState over CycloneDDS (`rt/lowcmd`, `rt/lowstate`).

Needs `unitree-sdk2py-dimos==1.0.3 --no-deps` on `cyclonedds==0.10.2` built against Debian's
`cyclonedds-dev` (requirements-dds.txt); PyPI's `unitree-sdk2` 1.0.1 imports a `b2` module it does not
ship. The CRC is ours (deploy.lowcmd, checked against Unitree's bitwise algorithm); `mode_machine` is
copied from the newest LowState; the velocity field is `dq`. Not exercised here: no DDS stack in CI.
"""

from __future__ import annotations

import threading

import numpy as np

from deploy.lowcmd import N_SLOTS, LowCmd, LowState, crc32_core
from deploy.runtime import DeployError


class DdsBackend:
    def __init__(self, interface: str = "lo", domain: int = 0) -> None:
        try:
            from unitree_sdk2py.core.channel import ChannelFactoryInitialize, ChannelPublisher, ChannelSubscriber
            from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowCmd_
            from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_
        except ImportError as e:
            raise DeployError("--backend dds needs unitree-sdk2py-dimos==1.0.3 (--no-deps) and cyclonedds==0.10.2 "
                              f"built against cyclonedds-dev: pip install -r requirements-dds.txt ({e})") from e
        ChannelFactoryInitialize(domain, interface)
        self._new_cmd = unitree_hg_msg_dds__LowCmd_
        self._lock = threading.Lock()
        self._latest: LowState | None = None
        self.pub = ChannelPublisher("rt/lowcmd", LowCmd_)
        self.pub.Init()
        self.sub = ChannelSubscriber("rt/lowstate", LowState_)
        self.sub.Init(self._on_state, 10)

    def _on_state(self, msg) -> None:
        n = min(N_SLOTS, len(msg.motor_state))
        q, dq, tau = np.zeros(N_SLOTS), np.zeros(N_SLOTS), np.zeros(N_SLOTS)
        for i in range(n):
            m = msg.motor_state[i]
            q[i], dq[i], tau[i] = m.q, m.dq, m.tau_est
        s = LowState(int(msg.tick), q, dq, np.asarray(msg.imu_state.quaternion, dtype=np.float64),
                     np.asarray(msg.imu_state.gyroscope, dtype=np.float64), int(msg.mode_machine), tau)
        with self._lock:
            self._latest = s

    def read_state(self) -> LowState:
        with self._lock:
            if self._latest is None:
                raise DeployError("no LowState on rt/lowstate yet: is the robot on this network interface?")
            return self._latest

    def send(self, cmd: LowCmd) -> None:
        data = cmd.pack()  # refuses unset slots; the same bytes the CRC is defined over
        msg = self._new_cmd()
        msg.mode_pr, msg.mode_machine = int(cmd.mode_pr), int(cmd.mode_machine)
        for i in range(N_SLOTS):
            m = msg.motor_cmd[i]
            m.mode, m.q, m.dq, m.tau, m.kp, m.kd = int(cmd.mode[i]), float(cmd.q[i]), float(cmd.dq[i]), \
                float(cmd.tau[i]), float(cmd.kp[i]), float(cmd.kd[i])
        msg.crc = crc32_core(data[:-4])
        self.pub.Write(msg)

    def close(self) -> None:
        self.sub.Close()
