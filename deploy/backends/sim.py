"""`sim` backend: the whole 29-motor G1 in MuJoCo with the robot's 500 Hz PD low level.

The model is `retarget.g1.actuated_g1_model(0.002, explicit_pd=True)`, the very one the policy env's
`sim2sim` setup steps (armature, foot contacts, torque motors clipped at the effort limits, dt).

What the runtime sends is delivered after a simulated communication latency, uniform in 18-30 ms
(the paper's measured range); the low level applies tau = kp (q* - q) + kd (dq* - dq) + tau_ff per
motor every 2 ms, clipped to the effort limits, as Unitree's motor drivers do. Physics follows the
runtime's clock (real time with RealClock, deterministic with FakeClock). The low state is reported
in float32, as the robot's DDS message is (`wire_f32=False` reports float64, for parity tests). Viewer-free: frames are rendered offscreen into an mp4.

A command due at t applies from the physics step that starts at t (`latency_s=(x, x)` is a fixed
latency). `set_state` starts the sim from a given state instead (band released), as the env's reset does.

A real G1 starts hanging from a gantry: the start-up ramp moves its joints to the default pose in
the air, then it is lowered and the policy takes over. The sim does the same with an elastic band
on the pelvis (as unitree_mujoco does), released by `release_band()` (the run does it when the
runtime first enters POLICY). Without a policy, these low PD gains do not hold the G1 upright.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering; must precede the first `import mujoco`

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from deploy.lowcmd import N_SLOTS, LowCmd, LowState  # noqa: E402
from retarget.g1 import ACTUATED_JOINTS, actuated_g1_model  # noqa: E402
from robomirror import g1_contract as g1  # noqa: E402

LOW_LEVEL_DT_S = 0.002
LATENCY_S = (0.018, 0.030)
STAND_HEIGHT_M = 0.793
MAX_BEHIND_S = 0.1  # physics catches up at most this much wall time per read
TIME_TOL_S = 1e-9  # clock sums drift by round-off: a command due at t must not slip to the step after t


def build_robot_model(robot_xml: str | None = None) -> mujoco.MjModel:
    return actuated_g1_model(LOW_LEVEL_DT_S, explicit_pd=True, robot_xml=robot_xml)


class SimBackend:
    def __init__(self, clock, latency_s: tuple[float, float] = LATENCY_S, seed: int = 0,
                 video: Path | None = None, video_fps: float = 25.0, robot_xml: str | None = None,
                 wire_f32: bool = True) -> None:
        self.clock, self.wire_f32 = clock, wire_f32
        self.m = build_robot_model(robot_xml)
        self.d = mujoco.MjData(self.m)
        self.d.qpos[2], self.d.qpos[3] = STAND_HEIGHT_M, 1.0
        mujoco.mj_forward(self.m, self.d)
        ids = [mujoco.mj_name2id(self.m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in g1.G1_29DOF_JOINTS]
        self.qadr, self.vadr = self.m.jnt_qposadr[ids], self.m.jnt_dofadr[ids]
        self.act = np.array([ACTUATED_JOINTS.index(j) for j in g1.G1_29DOF_JOINTS])  # ctrl[act] = motor order
        self.effort = np.array([g1.effort_limit_nm(j) for j in g1.G1_29DOF_JOINTS])
        self.latency_s, self.rng = latency_s, np.random.default_rng(seed)
        self.inbox: deque[tuple[float, LowCmd]] = deque()
        self.cmd: LowCmd | None = None  # none yet: motors limp
        self.t_sim = clock.now()
        self.tick = 0
        self.latencies_ms: list[float] = []
        self.video, self.video_dt = video, 1.0 / video_fps
        self.snapshots: list[np.ndarray] = []
        self._next_frame = self.t_sim
        self.skipped_s = 0.0
        self.band_on = True
        self.band_anchor = self.d.qpos[:3].copy()
        self.pelvis = mujoco.mj_name2id(self.m, mujoco.mjtObj.mjOBJ_BODY, "pelvis")

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Start from this state (the model's qpos/qvel layout), band released, as the env's reset does."""
        mujoco.mj_resetData(self.m, self.d)
        self.d.qpos[:], self.d.qvel[:] = qpos, qvel
        mujoco.mj_forward(self.m, self.d)
        self.release_band()

    def release_band(self) -> None:
        self.band_on = False
        self.d.xfrc_applied[self.pelvis] = 0.0

    def _band(self) -> None:
        if not self.band_on:
            return
        d = self.d
        force = 3000.0 * (self.band_anchor - d.qpos[:3]) - 300.0 * d.qvel[:3]
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, d.qpos[3:7])
        up_err = np.cross(rot.reshape(3, 3)[:, 2], [0.0, 0.0, 1.0])  # tilt of the pelvis z axis
        yaw_rate = rot.reshape(3, 3) @ d.qvel[3:6]
        d.xfrc_applied[self.pelvis, :3] = force
        d.xfrc_applied[self.pelvis, 3:] = 400.0 * up_err - 40.0 * yaw_rate

    def _torque(self) -> np.ndarray:
        c = self.cmd
        if c is None:
            return np.zeros(len(self.qadr))
        n = len(self.qadr)
        q, dq = self.d.qpos[self.qadr], self.d.qvel[self.vadr]
        tau = c.kp[:n] * (c.q[:n] - q) + c.kd[:n] * (c.dq[:n] - dq) + c.tau[:n]
        return np.clip(np.where(c.mode[:n] > 0, tau, 0.0), -self.effort, self.effort)

    def _advance(self) -> None:
        now = self.clock.now()
        if now - self.t_sim > MAX_BEHIND_S:  # a stalled caller: skip ahead rather than spiral
            self.skipped_s += now - self.t_sim - MAX_BEHIND_S
            self.t_sim = now - MAX_BEHIND_S
        while self.t_sim + LOW_LEVEL_DT_S <= now + TIME_TOL_S:
            while self.inbox and self.inbox[0][0] <= self.t_sim + TIME_TOL_S:
                self.cmd = self.inbox.popleft()[1]
            self.d.ctrl[self.act] = self._torque()
            self._band()
            mujoco.mj_step(self.m, self.d)
            self.t_sim += LOW_LEVEL_DT_S
            self.tick += 1
            if self.video is not None and self.t_sim >= self._next_frame:
                self.snapshots.append(self.d.qpos.copy())  # rendered at close(), off the loop
                self._next_frame += self.video_dt

    def _render(self) -> list[np.ndarray]:
        renderer = mujoco.Renderer(self.m, 240, 320)
        cam = mujoco.MjvCamera()
        cam.distance, cam.azimuth, cam.elevation = 3.0, 135.0, -12.0
        d = mujoco.MjData(self.m)
        frames = []
        for q in self.snapshots:
            d.qpos[:] = q
            mujoco.mj_forward(self.m, d)
            cam.lookat[:] = (q[0], q[1], 0.6)
            renderer.update_scene(d, camera=cam)
            frames.append(renderer.render())
        renderer.close()
        return frames

    def read_state(self) -> LowState:
        self._advance()
        f32 = ((lambda x: np.asarray(x, dtype=np.float32).astype(np.float64)) if self.wire_f32  # the robot's wire
               else (lambda x: np.array(x, dtype=np.float64)))  # noqa: E731
        q, dq = np.zeros(N_SLOTS), np.zeros(N_SLOTS)
        q[: len(self.qadr)], dq[: len(self.qadr)] = self.d.qpos[self.qadr], self.d.qvel[self.vadr]
        tau = np.zeros(N_SLOTS)
        tau[: len(self.qadr)] = self.d.ctrl[self.act]
        return LowState(self.tick, f32(q), f32(dq), f32(self.d.qpos[3:7]), f32(self.d.qvel[3:6]), 0, f32(tau))

    def send(self, cmd: LowCmd) -> None:
        lat = float(self.rng.uniform(*self.latency_s))
        self.latencies_ms.append(lat * 1e3)
        self.inbox.append((self.clock.now() + lat, cmd))

    def root_height_m(self) -> float:
        return float(self.d.qpos[2])

    def close(self) -> Path | None:
        if self.video is None or not self.snapshots:
            return None
        from ingest.video import encode_mp4
        from robomirror.atomic import publish_bytes

        self.video.parent.mkdir(parents=True, exist_ok=True)
        publish_bytes(self.video, encode_mp4(self._render(), 1.0 / self.video_dt))
        self.snapshots = []
        return self.video
