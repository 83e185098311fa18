"""ONNX export of the student: observation normalizer + the whole DDIM loop in one graph.

Inputs `obs` (B, 2206) and `noise` (B, 23) (the DDIM start; the runtime passes N(0, 1) draws or
zeros), output `action` (B, 23); joint targets are default + action_scale * action (metadata). The
metadata holds what a runtime needs and must check: joint order, kp/kd, default pose, action scale,
observation layout, the latent source and the model ids the policy was trained with.
torch.onnx.export with dynamo=False (torch >= 2.9 defaults to dynamo), opset 18.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from robomirror import g1_contract as g1
from robomirror.atomic import publish_bytes

OPSET = 18
TOLERANCE = 1e-4  # max |onnxruntime - torch| on the action, float32


def contract_metadata(latent_dim: int, extra: dict) -> dict[str, str]:
    meta = {"joint_names": list(g1.POLICY_JOINTS), "kp": g1.KP.tolist(), "kd": g1.KD.tolist(),
            "default_joint_pos_rad": g1.DEFAULT_JOINT_POS_RAD.tolist(), "action_scale": g1.ACTION_SCALE.tolist(),
            "obs_layout": g1.student_obs(latent_dim).as_json(), "policy_hz": g1.POLICY_HZ,
            "locked_joints": list(g1.WRIST_JOINTS), "locked_kp": g1.LOCKED_KP.tolist(),
            "locked_kd": g1.LOCKED_KD.tolist(), **extra}
    return {k: json.dumps(v) for k, v in meta.items()}


def export_student(student: torch.nn.Module, path: Path, metadata: dict) -> Path:
    import io

    import onnx

    if getattr(student.cfg, "eta", 0.0) != 0.0 or getattr(student.cfg, "sampler", "ddim") != "ddim":
        raise ValueError("only the deterministic DDIM sampler (eta = 0) is exported; the runtime has no RNG in-graph")
    student = student.eval()
    obs = torch.zeros((1, student.cfg.obs_dim))
    noise = torch.zeros((1, g1.N_ACT))
    buf = io.BytesIO()
    torch.onnx.export(student, (obs, noise), buf, input_names=["obs", "noise"], output_names=["action"],
                      opset_version=OPSET, dynamo=False, dynamic_axes={"obs": {0: "batch"}, "noise": {0: "batch"},
                                                                       "action": {0: "batch"}})
    model = onnx.load_from_string(buf.getvalue())
    for k, v in contract_metadata(student.cfg.latent_dim, metadata).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    publish_bytes(Path(path), model.SerializeToString())
    return Path(path)


def onnx_torch_gap(student: torch.nn.Module, path: Path, n: int = 16, seed: int = 0) -> float:
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, student.cfg.obs_dim)).astype(np.float32)
    noise = rng.normal(size=(n, g1.N_ACT)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["action"], {"obs": obs, "noise": noise})[0]
    with torch.no_grad():
        want = student(torch.from_numpy(obs), torch.from_numpy(noise)).numpy()
    return float(np.abs(got - want).max())


class DiTSampler(torch.nn.Module):
    """The DiT's whole sampling loop (Euler, the run's inference steps) for one clip, every token real:
    (noise (1, T_m, D_m), video tokens (1, T_v, D_v), pooled video (1, D_v)) -> pooled motion latent (1, D_m)."""

    def __init__(self, model, flow) -> None:
        super().__init__()
        self.model, self.flow = model, flow

    def forward(self, noise: torch.Tensor, video_tokens: torch.Tensor, video_pooled: torch.Tensor) -> torch.Tensor:
        from robomirror.flow import euler_sample, tau_buckets

        video_mask = torch.ones(video_tokens.shape[:2], dtype=torch.bool)
        motion_mask = torch.ones(noise.shape[:2], dtype=torch.bool)

        def predict(x, tau):
            return self.model(x, tau_buckets(tau, self.flow), video_tokens, video_mask, video_pooled, motion_mask)

        out = euler_sample(predict, noise, self.flow) * self.model.latent_std + self.model.latent_mean
        return out.mean(1)


def export_dit(model, flow, path: Path, metadata: dict, video_tokens: int = 10) -> Path:
    """ONNX of the DiT sampler for a Jetson that runs both the DiT and the policy (opset 18, dynamo=False).
    The attention's token counts are traced as constants: the graph takes exactly `video_tokens` video
    tokens (the count the store's VLM makes per clip, in the metadata)."""
    import io

    import onnx

    cfg = model.dit.cfg
    sampler = DiTSampler(model.eval(), flow).eval()
    args = (torch.zeros(1, cfg.motion_tokens, cfg.motion_dim), torch.zeros(1, video_tokens, cfg.video_dim),
            torch.zeros(1, cfg.video_dim))
    buf = io.BytesIO()
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel has no ONNX export
    try:
        with torch.no_grad():
            torch.onnx.export(sampler, args, buf, input_names=["noise", "video_tokens", "video_pooled"],
                              output_names=["motion_latent"], opset_version=OPSET, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    m = onnx.load_from_string(buf.getvalue())
    for k, v in (metadata | {"video_tokens": video_tokens, "inference_steps": flow.inference_steps}).items():
        m.metadata_props.add(key=k, value=json.dumps(v))
    onnx.checker.check_model(m)
    publish_bytes(Path(path), m.SerializeToString())
    return Path(path)
