"""The GPU path end to end on the CPU (slow): the GPU venv (requirements-gpu.txt) built once and cached,
a clip of a tiny store exported in mjlab's layout, mjlab's tracking task trained for 2 PPO iterations on
Warp's CPU device, its ONNX exported by mjlab's runner and run in deploy/'s sim through the G1 contract;
and deploy's observation adapter, fed the low state of mjlab's own env, gives that env's actor observation.
Skipped with pip's reason where the venv cannot be built (no registry reachable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from deploy.lowcmd import LowState
from deploy.mjlab_policy import MjlabTrackingPolicy
from robomirror import g1_contract as g1
from tests.venv_cache import cached_venv
from train.mjlab_path import REQUIREMENTS, TASK, MjlabPathConfig, MjlabPathError, run_path, venv_spec

# Runs in the GPU venv: mjlab's own env on the motion (play config, no observation noise, no encoder bias,
# no pushes), a few steps of random actions, and per step its actor observation with the state it came from.
DUMP_MJLAB_OBSERVATIONS = """
import sys
import numpy as np
import torch
import mjlab.tasks  # registers the tasks
from mjlab.envs import ManagerBasedRlEnv
from mjlab.tasks.registry import load_env_cfg

task, motion, out = sys.argv[1:4]
cfg = load_env_cfg(task, play=True)
cfg.scene.num_envs = 1
cfg.commands["motion"].motion_file = motion
cfg.observations["actor"].enable_corruption = False
cfg.events.pop("encoder_bias", None)
cfg.events.pop("push_robot", None)
env = ManagerBasedRlEnv(cfg=cfg, device="cpu")
env.reset()
torch.manual_seed(0)
rows = {}
for i in range(5):
    obs, *_ = env.step(0.3 * torch.randn(1, env.action_manager.total_action_dim))
    rows |= {f"obs_{i}": obs["actor"][0].numpy(), f"qpos_{i}": env.sim.data.qpos[0].numpy().copy(),
             f"qvel_{i}": env.sim.data.qvel[0].numpy().copy(),
             f"t_{i}": int(env.command_manager.get_term("motion").time_steps[0]),
             f"action_{i}": env.action_manager.action[0].numpy().copy()}
rows["joint_names"] = np.array(env.scene["robot"].joint_names)
np.savez(out, **rows)
"""


def test_venv_spec_swaps_only_torch_for_the_cpu_build():
    name, installs = venv_spec("cpu")
    assert name.endswith("-cputorch") and installs[0] == ["torch==2.13.0"]
    pins = installs[1]
    assert [p for p in pins if p.startswith("torch")] == ["torch==2.13.0"]  # held, so torchvision cannot lift it
    assert {"mjlab==1.6.0", "rsl-rl-lib==5.4.2"} <= set(pins) and any(p.startswith("mujoco-warp") for p in pins)
    assert venv_spec("cuda") == ("gpu-venv", [["-r", str(REQUIREMENTS)]])
    with pytest.raises(MjlabPathError, match="'cuda' or 'cpu'"):
        venv_spec("rocm")


def test_config_is_checked(tmp_path):
    with pytest.raises(MjlabPathError, match="--clip needs --data-root"):
        MjlabPathConfig(tmp_path, clip="abc")
    with pytest.raises(MjlabPathError, match="must be >= 1"):
        MjlabPathConfig(tmp_path, iterations=0)


@pytest.mark.slow
def test_mjlab_trains_on_warps_cpu_device_and_its_onnx_runs_in_deploys_sim(tmp_path):
    cached_venv(venv_spec()[0], sys.executable, REQUIREMENTS, venv_spec()[1])  # skips with pip's reason
    s = run_path(MjlabPathConfig(tmp_path, iterations=2, envs=2, cycles=100), log=lambda m: None)

    train_log = (tmp_path / "logs" / "mjlab_train.log").read_text()
    assert "device=cpu" in train_log  # mjlab itself chose the CPU (no GPU ids)
    assert "ONNX export failed" not in train_log
    assert s["task"] == TASK

    motion = np.load(s["motion"])  # what we exported is what mjlab trained on and bundled in its ONNX
    import onnxruntime as ort

    sess = ort.InferenceSession(s["onnx"], providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["joint_names"].split(",") == [str(j) for j in motion["joint_names"]]
    assert set(meta["joint_names"].split(",")) == set(g1.G1_29DOF_JOINTS)
    d = sess.get_inputs()[0].shape[-1]
    out = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, {"obs": np.zeros((1, d), np.float32), "time_step": np.array([[3.0]], np.float32)}),
                   strict=True))
    np.testing.assert_allclose(out["joint_pos"][0], motion["joint_pos"][3], atol=1e-5)

    # deploy's adapter builds, from the low state a robot reports, the very observation mjlab's env computes
    gpu_py = cached_venv(venv_spec()[0], sys.executable, REQUIREMENTS, venv_spec()[1])
    dump = tmp_path / "mjlab_obs.npz"
    p = subprocess.run([str(gpu_py), "-c", DUMP_MJLAB_OBSERVATIONS, TASK, s["motion"], str(dump)],
                       capture_output=True, text=True, timeout=900, cwd=tmp_path,
                       env={**os.environ, "WANDB_MODE": "disabled"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    z = np.load(dump)
    policy = MjlabTrackingPolicy(s["onnx"])
    assert tuple(z["joint_names"]) == policy.contract.joint_names
    for i in range(5):
        qpos, qvel = z[f"qpos_{i}"], z[f"qvel_{i}"]
        q, dq = np.zeros(35), np.zeros(35)
        q[:29], dq[:29] = qpos[7:36], qvel[6:35]  # mjlab's qpos: free joint, then its joints (= motor order)
        st = LowState(i, q, dq, qpos[3:7], qvel[3:6], 0, np.zeros(35))  # the IMU: pelvis quat, body-frame gyro
        ours = policy.observation(st, z[f"action_{i}"], policy.reference(int(z[f"t_{i}"])))
        np.testing.assert_allclose(ours, z[f"obs_{i}"], atol=1e-5)

    r = s["deploy"]
    assert r == json.loads((tmp_path / "deploy.json").read_text())
    assert r["joints"] == 29 and r["obs_dim"] == d
    assert r["policy_cycles"] >= 1 and r["cycles"] == 100
    assert isinstance(r["stayed_up"], bool)  # 2 iterations are plumbing: it may fall, and the summary says which
    assert ("stayed up" if r["stayed_up"] else "fell") in s["note"]
    if not r["stayed_up"]:
        assert r["fault"].startswith("fall") and r["fault_at_s"] is not None
