"""The G1 motion-tracking env: N MuJoCo worlds in one process, an rsl-rl `VecEnv`.

One policy step (50 Hz): the action becomes the 29 motor targets through the runtime's own shaping
(`robomirror.g1_shaping`: default + scale * a, the wrists held at 0, then the rate, torque and range
stages, against the nominal gains and the joint state at the start of the step, exactly as the robot
runtime calls it), held through `decimation` physics steps behind the env's control delay, with ERFI
torques; then state, rewards, terminations, resets (Reference State Initialization) and the
observation groups: `teacher` (489), `privileged` (250), `student` (2206) and `residual_base`
(the next reference joint positions in action units, which the teacher's residual adds to).
The observation's last action is the raw action, as on the robot.
Physics: all worlds are rows of one persistent `mujoco.batch.Batch` (one MjData per world, per-world
model fields for the randomization), stepped in C on `threads` threads with the GIL released. The
`train` setup's substep controls (the delay line's targets, ERFI) are known before the step: each
world runs its substeps in one call per constant target (one call for all worlds when no world's
delay falls inside the step), each call ending with the position and velocity stages at the new
state (what the observations read, and where the next call continues). The `sim2sim` setup's
explicit PD (numpy over all worlds, from the state before each substep, as the deploy sim computes
it) needs one call per substep, each ending with those stages. The batch's results are
bit-identical to a loop of mj_step over one MjData per world at any thread count. The numpy after the
physics (state reads, rewards, terminations, histories, observations) can be split by world rows over
`numpy_threads` threads (`row_shards.py`; each world's terms are its own row's, so the bits do not depend on
the split); what reduces over all worlds (the adaptive sigmas, logged means), the resets and every RNG draw
run on the caller's thread, in order. It is off by default: on the 2-core VM two threads of these short
numpy loops were slower than one (the GIL hand-offs between them cost more than the second core gives).
Reference frames: observations show frame k+1 (the next target); rewards compare the state after
the step with frame k+1 too, which is then the current frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import mujoco
import mujoco.batch
import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from robomirror import g1_contract as g1
from robomirror.g1_shaping import ClipCounter, Shaping, ShapingConfig, motor_gains, motor_targets
from train.env import curriculum, observations, rewards, terminations
from train.env.actuation import MOTOR_TO_ACTUATOR, SIMS, ModelIndex, build_model, pd_torque
from train.env.contacts import SelfCollision
from train.env.motion_library import MotionLibrary
from train.env.observations import History, RobotState
from train.env.randomization import NOMINAL, PhysicsParams, RandomizationConfig, erfi_torque, push_velocity
from train.env.row_shards import RowShards, join
from train.env.scene import SceneGeoms, SceneHeights


@dataclass(frozen=True)
class EnvConfig:
    num_envs: int = 16
    sim: str = "train"  # "train" | "sim2sim" (see actuation.py)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    rsi: bool = True  # Reference State Initialization: start at a uniformly sampled phase
    max_episode_s: float = 10.0
    adaptive_sigma: bool = True
    curriculum: bool = True
    seed: int = 0
    latent_dim: int = 256
    shaping: ShapingConfig = field(default_factory=ShapingConfig)  # action -> motor targets, as the runtime's
    threads: int = 1  # physics threads (the caller's included); results do not depend on it
    numpy_threads: int = 1  # threads of the per-world numpy after the physics (row_shards.py); nor on this
    height_map: bool = False  # issue 22: the contract's height_map_rel_root_m slice (121) in teacher and student

    # "paper": Table 10's terms, adaptive sigmas, curricula and a -200 termination penalty; "mjlab":
    # BeyondMimic's terms as mjlab's tracking task writes them (rewards.mjlab_reward)
    reward: str = "paper"
    # what ends a training episode: "paper" (the curriculum's keypoint deviation, a 1 rad tilt) or
    # "mjlab" (anchor height/orientation, end-effector heights); evaluation always uses Succ's criteria
    terminations: str = "paper"

    def __post_init__(self) -> None:
        for name, value in (("threads", self.threads), ("numpy_threads", self.numpy_threads)):
            if value < 1:
                raise ValueError(f"EnvConfig.{name} must be >= 1, got {value}")
        for name, value in (("reward", self.reward), ("terminations", self.terminations)):
            if value not in ("paper", "mjlab"):
                raise ValueError(f"EnvConfig.{name} must be 'paper' or 'mjlab', got {value!r}")

    def evaluation(self, sim: str = "train") -> "EnvConfig":
        """Nominal physics, every clip from its first frame, fixed thresholds."""
        return replace(self, sim=sim, randomization=NOMINAL, rsi=False, max_episode_s=1e9, adaptive_sigma=False,
                       curriculum=False, terminations="paper")


class TrackingEnv(VecEnv):
    def __init__(self, library: MotionLibrary, cfg: EnvConfig = EnvConfig(), device: str = "cpu") -> None:
        self.library, self.cfg_t, self.device = library, cfg, device
        self.cfg = asdict(cfg)
        self.sim = SIMS[cfg.sim]
        self.model = build_model(self.sim, scenes=library.scenes)  # scene clips: their geometry (scene.py)
        self.ix = ModelIndex.of(self.model)
        n = self.num_envs = cfg.num_envs
        self.num_actions = g1.N_ACT
        self.max_episode_length = int(cfg.max_episode_s * g1.POLICY_HZ) if cfg.max_episode_s < 1e8 else 10 ** 9
        self.episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.batch = mujoco.batch.Batch(self.model, n, nthread=cfg.threads, persistent=True)
        b = self.batch
        self.qpos, self.qvel, self.ctrl, self.qfrc_applied = b.qpos, b.qvel, b.ctrl, b.qfrc_applied  # state rows
        # derived fields, refreshed by every batch call (after a step: at the new state, position/velocity stages)
        self.xpos, self.xmat, self.xquat = b.xpos, b.xmat, b.xquat
        self.geom_xpos, self.geom_xmat = b.geom_xpos, b.geom_xmat
        self.actuator_force, self.cfrc_ext = b.actuator_force, b.cfrc_ext
        self.datas = [World(self.qpos[i], self.qvel[i]) for i in range(n)]
        self.rows = RowShards(n, cfg.numpy_threads)  # the numpy after the physics, by world rows
        self.self_collision = SelfCollision.of(self.model, self.ix.floor_geom)
        self.params = PhysicsParams(self.model, self.ix, n, self.sim.physics_dt_s)
        self.scene_geoms = SceneGeoms.of(self.model, len(library.scenes)) if library.scenes else None
        self.scene_heights = SceneHeights.of(library.scenes)  # the height_map slice's surfaces, all worlds at once
        self.rng = np.random.default_rng(cfg.seed)
        self.clip = np.zeros(n, dtype=int)
        self.frame = np.zeros(n, dtype=int)
        self.steps = np.zeros(n, dtype=int)
        self._last_len = np.zeros(n, dtype=int)
        self.action = np.zeros((n, g1.N_ACT))
        self.last_action = np.zeros((n, g1.N_ACT))
        # shaped motor targets (N, 3, 29), newest first: the delay line; [:, 0] is the rate limit's reference
        self.targets = np.tile(g1.MOTOR_DEFAULT_POS_RAD, (n, 3, 1))
        self.shaping = Shaping(cfg.shaping)
        self.kp_nominal, self.kd_nominal = motor_gains(g1.KP, g1.KD)  # what the runtime shapes with
        self.clipped = ClipCounter()
        self.air_time = np.zeros((n, 2))
        self.push_timer = np.zeros(n)
        self.erfi = np.zeros((n, g1.N_ACT))
        self.proprio = History(n, 1 + g1.STUDENT_HISTORY, g1.PROPRIO_DIM)
        self.lin_vel = History(n, 1 + g1.TEACHER_HISTORY, 3)
        self.term_curriculum = curriculum.TerminationCurriculum()
        self.penalty_curriculum = curriculum.PenaltyCurriculum()
        if not cfg.curriculum:  # evaluation: fixed thresholds, full penalties
            self.term_curriculum = curriculum.TerminationCurriculum(theta=terminations.SUCC_MAX_DEVIATION_M, decay=0.0)
            self.penalty_curriculum = curriculum.PenaltyCurriculum(alpha=1.0, growth=0.0)
        self.sigma = rewards.AdaptiveSigma(enabled=cfg.adaptive_sigma)
        self.state: RobotState | None = None
        self.last_terms: dict[str, np.ndarray] = {}
        self.reset(np.arange(n))

    # ----------------------------------------------------------------------------------- reset
    def reset(self, ids: np.ndarray, clips: np.ndarray | None = None, frames: np.ndarray | None = None) -> None:
        lib, ids = self.library, np.asarray(ids, dtype=int)
        self.clip[ids] = self.rng.integers(0, lib.n_clips, len(ids)) if clips is None else clips
        last = lib.lengths[self.clip[ids]] - 2  # leave at least one step
        if frames is not None:
            self.frame[ids] = frames
        elif self.cfg_t.rsi:
            self.frame[ids] = np.floor(self.rng.uniform(0, 1, len(ids)) * (last + 1)).astype(int)
        else:
            self.frame[ids] = 0
        self.frame[ids] = np.clip(self.frame[ids], 0, np.maximum(last, 0))
        ref = lib.frame(self.clip[ids], self.frame[ids])
        ix, col = self.ix, ids[:, None]
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)  # mj_resetData: ctrl, forces, warm start zeroed
        self.qpos[ids, :3], self.qpos[ids, 3:7] = ref["root_pos"], ref["root_quat"]
        self.qpos[col, ix.qpos_adr] = ref["joint_pos"]
        self.qpos[col, ix.motor_qpos_adr[g1.LOCKED_TO_MOTOR]] = g1.LOCKED_JOINT_POS_RAD  # qvel stays 0
        rot = observations.quat_wxyz_to_matrix(ref["root_quat"])
        self.qvel[ids, :3] = ref["root_lin_vel"]
        self.qvel[ids, 3:6] = observations.to_body(rot, ref["root_ang_vel"])  # the free joint's angular velocity is local
        self.qvel[col, ix.dof_adr] = ref["joint_vel"]
        self.params.sample(ids, self.cfg_t.randomization, self.rng)
        self.params.apply(self.batch, ids, self.sim.explicit_pd)
        if self.scene_geoms is not None:  # each world collides with its clip's scene only
            self.scene_geoms.enable(self.batch, ids, lib.scene_of_clip[self.clip[ids]])
        self.batch.forward(ids)  # mj_forward of each reset world, on its own parameters
        self.steps[ids] = 0
        self.episode_length_buf[torch.as_tensor(ids)] = 0
        self.action[ids] = 0.0
        self.last_action[ids] = 0.0
        self.targets[ids] = g1.motor_vector(ref["joint_pos"], g1.LOCKED_JOINT_POS_RAD)[:, None, :]
        self.air_time[ids] = 0.0
        self.push_timer[ids] = self.rng.uniform(*self.cfg_t.randomization.push_interval_s, len(ids))
        state = self._read_state(ids, ref)
        self.state = state if self.state is None else _merge(self.state, state, ids)
        s = self.state
        frame = observations.proprio(s.joint_pos[ids], s.joint_vel[ids], self.action[ids], s.root_ang_vel_b[ids],
                                     s.root_quat_w[ids])
        self.proprio.fill(ids, frame)
        self.lin_vel.fill(ids, observations.to_body(s.root_rot[ids], s.root_lin_vel_w[ids]))

    # ------------------------------------------------------------------------------- physics
    def _read_state(self, rows: slice | np.ndarray = slice(None), ref: dict | None = None) -> RobotState:
        """Read the worlds `rows` (a slice of the step's rows, or the reset ids with their reference frame,
        whose velocities the keypoints take)."""
        ix = self.ix
        qpos, qvel = np.array(self.qpos[rows]), np.array(self.qvel[rows])  # copies: the rows move on
        q, qd = qpos[:, ix.qpos_adr], qvel[:, ix.dof_adr]
        xmat = self.xmat[rows]
        rot = xmat[:, ix.keypoint_body].reshape(len(q), -1, 3, 3)
        kp_pos = self.xpos[rows][:, ix.keypoint_body] + (rot @ ix.keypoint_offset[:, :, None])[..., 0]
        kp_quat = self.xquat[rows][:, ix.keypoint_body]
        torque = np.array(self.actuator_force[rows][:, :g1.N_ACT])  # the policy joints' actuators come first
        # net external (contact) force on each foot, world frame, as the last physics substep solved it
        # (the model's accelerometer makes every step compute cfrc_ext)
        force = self.cfrc_ext[rows][:, ix.foot_body, 3:]
        collide = self.self_collision(self.geom_xpos[rows], self.geom_xmat[rows])
        if ref is not None:
            kp_lin, kp_ang = ref["kp_lin_vel"], ref["kp_ang_vel"]
        else:
            dt = 1.0 / g1.POLICY_HZ
            kp_lin = (kp_pos - self.state.kp_pos_w[rows]) / dt
            rel = rot @ np.swapaxes(self.state.kp_rot[rows], -1, -2)
            kp_ang = observations.matrix_to_axis_angle(rel) / dt
        return RobotState(q, qd, qpos[:, :3], qpos[:, 3:7], qvel[:, :3], qvel[:, 3:6], kp_pos, kp_quat, kp_lin,
                          kp_ang, force, collide, torque, np.array(xmat[:, 1]).reshape(-1, 3, 3), rot)  # body 1: pelvis

    def _physics(self) -> None:
        """Hold the delayed targets for one policy period in every world: one batch call per substep."""
        dec, ix, rows = self.sim.decimation, self.ix, np.arange(self.num_envs)
        self.qfrc_applied[:, ix.dof_adr] = self.erfi
        # the target each world's motors track at substep s: the newest once its delay has passed
        lag = self.params.delay_steps[:, None] - np.arange(dec)[None, :]  # (N, dec) substeps until it arrives
        slot = np.where(lag <= 0, 0, np.where(lag <= dec, 1, 2))
        if not self.sim.explicit_pd:  # every substep's target is known now: each world runs its substeps in one
            # call per constant target (world-major: its data stays in cache; the velocity stage each call ends with
            # is where the next continues), worlds grouped by their delay's pattern of targets over the substeps;
            # the same bits as one call per substep (tests/train/test_env_physics_call.py)
            patterns, group = np.unique(slot, axis=0, return_inverse=True)
            group = group.ravel()
            for g, pat in enumerate(patterns):
                ids = np.flatnonzero(group == g) if len(patterns) > 1 else None
                sel = rows if ids is None else ids
                cuts = [0, *(k for k in range(1, dec) if pat[k] != pat[k - 1]), dec]
                for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
                    self.ctrl[sel[:, None], MOTOR_TO_ACTUATOR] = self.targets[sel, pat[lo]]
                    self.batch.step(ids, nstep=hi - lo, stage=mujoco.mjtStage.mjSTAGE_VEL)
            return
        kp, kd = self.params.gains()  # randomized gains on the policy joints, the wrists' own nominal ones
        for s in range(dec):  # explicit PD: each substep's torque depends on the state the previous one reached
            target = self.targets[rows, slot[:, s]]  # (N, 29) motor order
            self.ctrl[:, MOTOR_TO_ACTUATOR] = pd_torque(target, self.qpos[:, ix.motor_qpos_adr],
                                                        self.qvel[:, ix.motor_dof_adr], kp, kd)
            self.batch.step(nstep=1, stage=mujoco.mjtStage.mjSTAGE_VEL)

    # ---------------------------------------------------------------------------------- step
    def _shape(self, a: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(N, 23) raw actions -> (N, 29) shaped motor targets, by the runtime's shaping (all worlds at once):
        nominal gains (the policy's metadata gains), the joint state at the start of the step, and the
        previous shaped target (after a reset: the reset pose) as the rate limit's reference."""
        q, dq = self.qpos[:, self.ix.motor_qpos_adr], self.qvel[:, self.ix.motor_dof_adr]
        shaped, masks = self.shaping(motor_targets(a), self.targets[:, 0], q, dq, self.kp_nominal, self.kd_nominal,
                                     1.0 / g1.POLICY_HZ)
        self.clipped.add(masks)
        return shaped, masks

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        a = actions.detach().cpu().numpy().astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise FloatingPointError("the policy produced a NaN/inf action")
        self.last_action, self.action = self.action, a
        shaped, masks = self._shape(a)
        self.targets[:, 1:] = self.targets[:, :-1]
        self.targets[:, 0] = shaped
        rand = self.cfg_t.randomization
        self.erfi = erfi_torque(self.rng, self.num_envs, rand)
        self._physics()
        self.frame += 1
        self.steps += 1
        self.episode_length_buf += 1
        if rand.enabled:
            self.push_timer -= 1.0 / g1.POLICY_HZ
            kick = np.flatnonzero(self.push_timer <= 0)
            if len(kick):
                self.qvel[kick, :3] += push_velocity(self.rng, len(kick), rand)
                self.batch.forward(kick, stage=mujoco.mjtStage.mjSTAGE_VEL)  # their next step starts from the kick
                self.push_timer[kick] = self.rng.uniform(*rand.push_interval_s, len(kick))
        theta, sigma = self.term_curriculum.theta, dict(self.sigma.sigma)  # this step's, before they move on
        r = join(self.rows.map(lambda rows: self._step_rows(rows, theta, sigma)))
        self.state = r["state"]
        terms, metrics, terminated, time_out = r["terms"], r["metrics"], r["terminated"], r["time_out"]
        if "errors" in r:  # the paper's set: sigmas tighten to the errors of all worlds
            self.sigma.update(r["errors"])
        self.term_curriculum.step()
        self.penalty_curriculum.step()
        self.last_terms = terms
        done = terminated | time_out
        ids = np.flatnonzero(done)
        extras = {"time_outs": torch.as_tensor(time_out, device=self.device),
                  "metrics": metrics, "terminated": terminated, "clip": self.clip.copy(),
                  "log": {"/reward/" + k: float(np.mean(v)) for k, v in terms.items()}
                  | {"/curriculum/theta_m": theta, "/curriculum/penalty_scale": self.penalty_curriculum.alpha,
                     "/tracking/mpkpe_m": float(metrics["mpkpe_m"].mean())}
                  | {f"/shaping/{k}": float(np.mean(v)) for k, v in masks.items()}  # of motor targets this step
                  | {f"/shaping/{k}_total": v for k, v in self.clipped.total().items()}}
        self._last_len = self.steps.copy()
        if len(ids):
            self.reset(ids)
        return (self.get_observations(), torch.as_tensor(r["reward"], dtype=torch.float32, device=self.device),
                torch.as_tensor(done, device=self.device), extras)

    def _step_rows(self, rows: slice, theta_m: float, sigma: dict[str, float]) -> dict:
        """After the physics, what each world of `rows` computes from its own row alone (one thread's share):
        its state, reward terms, terminations and metrics, and its air time and histories moved on."""
        s = self._read_state(rows)
        ref = self.library.frame(self.clip[rows], self.frame[rows])
        contact = rewards.foot_contact(s)
        self.air_time[rows] = np.where(contact, 0.0, self.air_time[rows] + 1.0 / g1.POLICY_HZ)
        air_time = self.air_time[rows]
        action, last_action = self.action[rows], self.last_action[rows]
        if self.cfg_t.terminations == "mjlab":
            a = terminations.ANCHOR_KEYPOINT
            term = terminations.mjlab_terminated(s.kp_pos_w, ref["kp_pos"], s.kp_rot[:, a], ref["kp_rot"][:, a])
        else:
            term = terminations.terminated(s.kp_pos_w, ref["kp_pos"], s.root_quat_w, ref["root_quat"], theta_m)
        terminated = np.logical_or.reduce(list(term.values()))
        time_out = terminations.timed_out(self.frame[rows], self.library.lengths[self.clip[rows]], self.steps[rows],
                                          self.max_episode_length) & ~terminated
        out = {"state": s, "terminated": terminated, "time_out": time_out}
        if self.cfg_t.reward == "mjlab":
            out["reward"], out["terms"] = rewards.mjlab_reward(rewards.mjlab_errors(s, ref), s, action, last_action,
                                                               self.ix.joint_range)
        else:
            out["errors"] = rewards.tracking_errors(s, ref)
            pens = rewards.penalties(s, action, last_action, air_time, self.ix.joint_range)
            out["reward"], out["terms"] = rewards.total_reward(out["errors"], sigma, contact.astype(float),
                                                               ref["contact"], pens, self.penalty_curriculum.alpha,
                                                               terminated)
        joint_err = np.abs(s.joint_pos - ref["joint_pos"])
        out["metrics"] = {"mpjpe_rad": joint_err.mean(-1), "joint_abs_err_rad": joint_err,
                          "mpkpe_m": terminations.mean_keypoint_deviation(s.kp_pos_w, ref["kp_pos"]),
                          "tilt_rad": terminations.tilt_error(s.root_quat_w, ref["root_quat"])}
        _history_rows(self.proprio, rows).push(observations.proprio(s.joint_pos, s.joint_vel, action,
                                                                    s.root_ang_vel_b, s.root_quat_w))
        _history_rows(self.lin_vel, rows).push(observations.to_body(s.root_rot, s.root_lin_vel_w))
        return out

    # ---------------------------------------------------------------------------- observations
    def observation_arrays(self) -> dict[str, np.ndarray]:
        """Every observation group of every world, float64 (each thread computes its share of the worlds)."""
        params = self.params.vector()
        return join(self.rows.map(lambda rows: self._observation_rows(rows, params[rows])))

    def _observation_rows(self, rows: slice, params: np.ndarray) -> dict[str, np.ndarray]:
        """The observation groups of the worlds `rows` (one thread's share)."""
        s, clip = _state_rows(self.state, rows), self.clip[rows]
        nxt = self.library.frame(clip, self.frame[rows] + 1)
        proprio = _history_rows(self.proprio, rows)
        teacher = np.concatenate([proprio.flat(1 + g1.TEACHER_HISTORY), observations.teacher_reference(s, nxt)], -1)
        priv = observations.privileged(_history_rows(self.lin_vel, rows).flat(), s, nxt, params)
        student = g1.student_observation(self.library.latents[clip], proprio)
        out = {"teacher": teacher, "privileged": priv, "student": student,
               "residual_base": g1.action_from_target(nxt["joint_pos"])}
        if self.cfg_t.height_map:  # the contract's optional terrain slice, last in teacher and student
            out = observations.with_height_map(out, self.scene_heights.observation(
                self.library.scene_of_clip[clip], s.root_pos_w, s.root_quat_w))
        observations.check_layout(out, self.cfg_t.latent_dim, self.cfg_t.height_map)
        return out

    def get_observations(self) -> TensorDict:
        """The observation groups as float32 tensors; each thread computes and casts its share of the worlds
        into them (the cast is torch's: round to nearest)."""
        params, n = self.params.vector(), self.num_envs
        dims = observations.group_dims(self.cfg_t.latent_dim, self.cfg_t.height_map)
        out = {k: np.empty((n, d), dtype=np.float32) for k, d in dims.items()}  # new each step: callers keep them

        def fill(rows: slice) -> None:
            for k, v in self._observation_rows(rows, params[rows]).items():
                out[k][rows] = v

        self.rows.map(fill)
        return TensorDict({k: torch.from_numpy(v).to(self.device) for k, v in out.items()}, batch_size=[n],
                          device=self.device)

    def curriculum_state(self) -> dict:
        return {"termination": asdict(self.term_curriculum), "penalty": asdict(self.penalty_curriculum),
                "sigma": dict(self.sigma.sigma), "ema": dict(self.sigma.ema)}

    def load_curriculum_state(self, st: dict) -> None:
        self.term_curriculum = curriculum.TerminationCurriculum(**st["termination"])
        self.penalty_curriculum = curriculum.PenaltyCurriculum(**st["penalty"])
        self.sigma.sigma, self.sigma.ema = dict(st["sigma"]), dict(st["ema"])


@dataclass(frozen=True)
class World:
    """One world's state rows in the batch (views: reading gives the current state, writing sets it)."""

    qpos: np.ndarray  # (nq,)
    qvel: np.ndarray  # (nv,)


def _merge(old: RobotState, new: RobotState, ids: np.ndarray) -> RobotState:
    for f in old.__dataclass_fields__:
        if getattr(old, f) is not None:
            getattr(old, f)[ids] = getattr(new, f)
    return old


def _state_rows(s: RobotState, rows: slice) -> RobotState:
    """The worlds `rows` of a state (views)."""
    return RobotState(**{f: None if getattr(s, f) is None else getattr(s, f)[rows] for f in s.__dataclass_fields__})


def _history_rows(h: History, rows: slice) -> History:
    """The worlds `rows` of a history (a view: pushing it moves those worlds' frames on), run by the class's
    own code."""
    view = object.__new__(type(h))
    view.buf = h.buf[rows]
    return view
