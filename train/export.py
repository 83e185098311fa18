"""ONNX export of the student: observation normalizer + the whole DDIM loop in one graph.

The diffusion student is exported as `FoldedDDIM`: the same sampler with what does not depend on the
noisy action taken out of the loop (exact algebra; float rounding aside, checked against torch):
the time embedding of each step's fixed timestep is a constant, and each block's AdaLN modulation,
linear in c = cond(obs) + time(t), is W cond(obs) + (W time(t) + b): W cond(obs) is one matmul for
all blocks and steps, and each step adds a constant. At DDIM-2 that reads the modulation weights
(half the student's parameters) once instead of twice; at batch 1 on a CPU the student is bound by
reading its weights, so this is most of the latency.

Inputs `obs` (B, 2206) and `noise` (B, 23) (the DDIM start; the runtime passes N(0, 1) draws or
zeros), output `action` (B, 23); joint targets are default + action_scale * action (metadata). The
metadata holds what a runtime needs and must check: joint order, kp/kd, default pose, action scale,
observation layout, the latent source and the model ids the policy was trained with.
torch.onnx.export with dynamo=False (torch >= 2.9 defaults to dynamo), opset 18, shapes fixed at batch 1
(the runtime's; `batch=None` keeps a dynamic batch axis), and beside it `<name>.opt.onnx`: the same graph
after onnxruntime's ORT_ENABLE_ALL pass (constant folding, Gemm / LayerNorm fusions), metadata kept.

Why width 1792 cannot meet 5 ms on one CPU core in float32 (batch 1, DDIM-2, 3 blocks, obs 2206):
multiply-adds per call = cond 2206 w + w^2 (once) + modulation 9 w^2 (once, folded) + 2 steps x 3 blocks
x 2 w^2 (+ the 23-wide in/out layers) = 7.2 M + 28.9 M + 38.5 M = 74.6 M at w = 1792: 0.15 GFLOP, ~1.5 ms
of one AVX-512 core's arithmetic, but each multiply-add reads one weight that nothing else reuses at
batch 1, 298 MB of float32 per call (222 MB distinct, more than any core's cache), so the call streams
its weights from memory. At the ~10 GB/s one core of this machine streams (measured beside it by
deploy.bench) that is ~30 ms; 5 ms needs 60 GB/s. Only fewer bytes per weight get near it: int8
weights 75 MB (~7.5 ms), 4-bit blocks 37 MB (~3.7 ms), both with their error against torch reported.
At the default width 512 the same count is 6.9 M multiply-adds, 28 MB, and mostly cache-resident.
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


def contract_metadata(latent_dim: int, extra: dict, height_map: bool = False) -> dict[str, str]:
    meta = {"joint_names": list(g1.POLICY_JOINTS), "kp": g1.KP.tolist(), "kd": g1.KD.tolist(),
            "default_joint_pos_rad": g1.DEFAULT_JOINT_POS_RAD.tolist(), "action_scale": g1.ACTION_SCALE.tolist(),
            "obs_layout": g1.student_obs(latent_dim, height_map).as_json(), "policy_hz": g1.POLICY_HZ,
            "locked_joints": list(g1.WRIST_JOINTS), "locked_kp": g1.LOCKED_KP.tolist(),
            "locked_kd": g1.LOCKED_KD.tolist(),
            # mjlab's exporter's keys (mjlab/rl/exporter_utils.py: get_base_metadata), so one deploy check
            # (deploy.mjlab_policy.contract_from_metadata) reads both kinds of ONNX; joint_names and
            # action_scale are shared
            "default_joint_pos": g1.DEFAULT_JOINT_POS_RAD.tolist(), "joint_stiffness": g1.KP.tolist(),
            "joint_damping": g1.KD.tolist(), **extra}
    return {k: json.dumps(v) for k, v in meta.items()}


def optimized_path(path: Path) -> Path:
    """Where `export_student` writes the onnxruntime-optimised copy of `path`."""
    return Path(path).with_name(Path(path).stem + ".opt.onnx")


def export_student(student: torch.nn.Module, path: Path, metadata: dict, batch: int | None = 1,
                   optimized: bool = True) -> Path:
    """The student (normalizer + DDIM loop, one graph) at `path` with the contract's metadata; shapes
    fixed at `batch` rows (None: a dynamic batch axis); with `optimized`, `optimized_path(path)` too."""
    import io

    import onnx

    if getattr(student.cfg, "eta", 0.0) != 0.0 or getattr(student.cfg, "sampler", "ddim") != "ddim":
        raise ValueError("only the deterministic DDIM sampler (eta = 0) is exported; the runtime has no RNG in-graph")
    student = student.eval()
    cfg = student.cfg
    graph = FoldedDDIM(student).eval() if getattr(cfg, "kind", "mlp") == "diffusion" else student
    if batch is not None and batch < 1:
        raise ValueError(f"export batch must be a positive row count or None (dynamic), got {batch}")
    obs = torch.zeros((batch or 1, student.cfg.obs_dim))
    noise = torch.zeros((batch or 1, g1.N_ACT))
    buf = io.BytesIO()
    dynamic = None if batch else {"obs": {0: "batch"}, "noise": {0: "batch"}, "action": {0: "batch"}}
    torch.onnx.export(graph, (obs, noise), buf, input_names=["obs", "noise"], output_names=["action"],
                      opset_version=OPSET, dynamo=False, dynamic_axes=dynamic)
    model = onnx.load_from_string(buf.getvalue())
    for k, v in contract_metadata(student.cfg.latent_dim, metadata, getattr(student.cfg, "height_map", False)).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    publish_bytes(Path(path), model.SerializeToString())
    if optimized:
        optimize_for_cpu(Path(path), optimized_path(path))
    return Path(path)


def optimize_for_cpu(path: Path, out: Path) -> Path:
    """`path` after onnxruntime's ORT_ENABLE_ALL graph pass (what a session does at every load: constant
    folding, MatMul + Add -> Gemm, LayerNorm and activation fusions), saved with `path`'s metadata so a
    runtime can load it without redoing the pass. Its fused ops are onnxruntime's own (com.microsoft):
    load it with onnxruntime; `path` stays the portable file."""
    import onnx
    import onnxruntime as ort

    src = onnx.load(str(path))
    tmp = Path(out).with_suffix(".tmp.onnx")
    so = session_options(1)
    so.optimized_model_filepath = str(tmp)
    # NCHWc layouts are the only ORT_ENABLE_ALL pass tied to the CPU it ran on (convolutions; the student has none)
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"], disabled_optimizers=["NchwcTransformer"])
    model = onnx.load(str(tmp))
    tmp.unlink()
    have = {p.key for p in model.metadata_props}
    for p in src.metadata_props:
        if p.key not in have:
            model.metadata_props.add(key=p.key, value=p.value)
    publish_bytes(Path(out), model.SerializeToString())
    return Path(out)


class FoldedDDIM(torch.nn.Module):
    """A DiffusionStudent's deterministic DDIM (eta 0) with the step-invariant conditioning folded out:
    (obs (B, obs_dim), noise (B, 23)) -> action (B, 23), the student's own forward up to rounding."""

    def __init__(self, st: torch.nn.Module) -> None:
        super().__init__()
        cfg, w = st.cfg, st.cfg.width
        self.normalizer, self.cond, self.inp = st.normalizer, st.cond, st.inp
        self.final_norm, self.out, self.skip = st.final_norm, st.out, st.skip
        self.norms = torch.nn.ModuleList(b.norm for b in st.blocks)
        self.mlps = torch.nn.ModuleList(b.mlp for b in st.blocks)
        self.x0 = cfg.prediction == "x0"
        self.width, ts = w, st.schedule()
        with torch.no_grad():
            weight = torch.cat([b.mod.weight for b in st.blocks])  # (blocks * 3w, w)
            bias = torch.cat([b.mod.bias for b in st.blocks])
            self.mod = torch.nn.Linear(w, weight.shape[0], bias=False)
            self.mod.weight.copy_(weight)
            time_c = st.time(st._time_embedding(torch.tensor(ts)))  # (steps, w)
            self.register_buffer("mod_const", time_c @ weight.T + bias)  # (steps, blocks * 3w)
            ab = st.alpha_bar[ts]
            ab_next = torch.cat([st.alpha_bar[ts[1:]], torch.ones(1)])
            # x0-prediction: eps = (x - sqrt(ab) x0) / sqrt(1 - ab); eps-prediction: x0 = (x - sqrt(1 - ab) eps) / sqrt(ab)
            self.register_buffer("sqrt_ab", ab.sqrt())
            self.register_buffer("sqrt_1m_ab", (1 - ab).sqrt())
            self.register_buffer("sqrt_ab_next", ab_next.sqrt())
            self.register_buffer("sqrt_1m_ab_next", (1 - ab_next).clamp_min(0).sqrt())

    def forward(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        m_obs = self.mod(self.cond(self.normalizer(obs)))  # (B, blocks * 3w), once for every step
        x, w, steps = noise, self.width, self.mod_const.shape[0]
        for i in range(steps):
            m = m_obs + self.mod_const[i]
            h = self.inp(x)
            for j, (norm, mlp) in enumerate(zip(self.norms, self.mlps, strict=True)):
                shift, scale, gate = m[:, 3 * w * j: 3 * w * (j + 1)].chunk(3, -1)
                h = h + gate * mlp(norm(h) * (1 + scale) + shift)
            pred = self.out(self.final_norm(h)) + self.skip(x)
            if self.x0:
                x0, eps = pred, (x - self.sqrt_ab[i] * pred) / self.sqrt_1m_ab[i]
            else:
                eps, x0 = pred, (x - self.sqrt_1m_ab[i] * pred) / self.sqrt_ab[i]
            if i == steps - 1:
                return x0
            x = self.sqrt_ab_next[i] * x0 + self.sqrt_1m_ab_next[i] * eps  # eta 0: sigma = 0
        return x


def session_options(threads: int = 1):
    """onnxruntime options for the policy at 50 Hz: every graph optimisation (ORT_ENABLE_ALL: constant
    folding, Gemm/LayerNorm fusions, the CPU's own layouts), one sequential thread pool of `threads`
    (the caller's thread alone at 1), no spinning between calls (a 50 Hz loop sleeps 18 of every 20 ms)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = so.inter_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def _gemm_to_matmul(model) -> None:
    """Gemm(A, B, C) with transB (torch's Linear) -> MatMul(A, B^T) + C, in place: onnxruntime's dynamic
    quantizer mis-shapes the MatMulInteger it makes from a transposed Gemm (onnxruntime 1.31)."""
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    nodes, transposed = [], set()
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in inits or attrs.get("transA", 0)
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            nodes.append(node)
            continue
        name = node.input[1] + "_kn"
        if name not in transposed:  # a weight both DDIM steps share is transposed once
            w = numpy_helper.to_array(inits[node.input[1]])
            model.graph.initializer.append(numpy_helper.from_array(w.T.copy() if attrs.get("transB", 0) else w, name))
            transposed.add(name)
        mm = node.output[0] + "_mm"
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [mm if len(node.input) > 2 else node.output[0]],
                                      name=node.name + "_MatMul"))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [mm, node.input[2]], [node.output[0]], name=node.name + "_Add"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def _with_metadata(model, meta: list[tuple[str, str]], out: Path) -> Path:
    del model.metadata_props[:]
    for k, v in meta:
        model.metadata_props.add(key=k, value=v)
    publish_bytes(Path(out), model.SerializeToString())
    return Path(out)


def quantize_int8(path: Path, out: Path) -> Path:
    """Dynamic int8 quantisation of the weights (per output channel; activations quantised per call), the
    metadata carried over. Use it only with `action_error` reported beside it."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(path))
    meta = [(p.key, p.value) for p in model.metadata_props]
    _gemm_to_matmul(model)
    pre, tmp = Path(out).with_suffix(".pre.onnx"), Path(out).with_suffix(".tmp.onnx")
    onnx.save(onnx.shape_inference.infer_shapes(model), str(pre))
    quantize_dynamic(str(pre), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    model = onnx.load(str(tmp))
    pre.unlink()
    tmp.unlink()
    return _with_metadata(model, meta, out)


def quantize_int4(path: Path, out: Path, block: int = 32) -> Path:
    """4-bit weights in blocks of `block` input channels, each with its own float scale (symmetric,
    round-to-nearest; onnxruntime's MatMulNBits, accuracy level 4: activations to int8 per block, int8
    dot products), the metadata carried over: 1/8 of float32's bytes, which is what batch-1 latency on a
    CPU pays for. Use it only with `action_error` reported beside it."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    if block not in (16, 32, 64, 128, 256):
        raise ValueError(f"int4 block must be a power of two in 16..256 (MatMulNBits), got {block}")
    model = onnx.load(str(path))
    meta = [(p.key, p.value) for p in model.metadata_props]
    _gemm_to_matmul(model)
    q = MatMulNBitsQuantizer(model, bits=4, block_size=block, is_symmetric=True, accuracy_level=4)
    q.process()
    return _with_metadata(q.model.model, meta, out)


def _run_rows(path: Path, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The exported policy's actions for every row, one call per row where its shapes are fixed."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    rows = sess.get_inputs()[0].shape[0]
    if not isinstance(rows, int):
        return sess.run(["action"], {"obs": obs, "noise": noise})[0]
    if len(obs) % rows:
        raise ValueError(f"{path.name} takes batches of {rows} rows; got {len(obs)} observations")
    return np.concatenate([sess.run(["action"], {"obs": obs[i:i + rows], "noise": noise[i:i + rows]})[0]
                           for i in range(0, len(obs), rows)])


def action_error(student: torch.nn.Module, path: Path, n: int = 64, seed: int = 0) -> dict[str, float]:
    """|onnxruntime - torch| on the action of n random observations and noises (N(0, 1), the noise the
    runtime draws): max and mean in action units, and as joint-target error [rad] (x the contract's
    per-joint action scale)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, student.cfg.obs_dim)).astype(np.float32)
    noise = rng.normal(size=(n, g1.N_ACT)).astype(np.float32)
    got = _run_rows(Path(path), obs, noise)
    with torch.no_grad():
        want = student(torch.from_numpy(obs), torch.from_numpy(noise)).numpy()
    return error_stats(got, want)


def error_stats(got: np.ndarray, want: np.ndarray, p99: bool = False) -> dict[str, float]:
    """|got - want| over (n, 23) actions: max and mean (p99: and the 99th percentile) in action units and as
    joint-target error [rad] (x the contract's per-joint action scale), and the sample count."""
    err = np.abs(got - want)
    rad = err * g1.ACTION_SCALE[None]
    out = {"max_action": float(err.max()), "mean_action": float(err.mean()), "max_rad": float(rad.max()),
           "mean_rad": float(rad.mean()), "samples": int(len(got))}
    if p99:
        out |= {"p99_action": float(np.percentile(err, 99)), "p99_rad": float(np.percentile(rad, 99))}
    return out


def onnx_torch_gap(student: torch.nn.Module, path: Path, n: int = 16, seed: int = 0, mean: bool = False) -> float:
    """max (or mean) |onnxruntime - torch| over the action of n random observations and noises."""
    e = action_error(student, path, n, seed)
    return e["mean_action"] if mean else e["max_action"]


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
