"""`python -m catalog report`: one self-contained HTML page with the corpus at a glance.

Plots (PNG, embedded): clips per dataset and label, clip durations, stability pass rate and the
CoM-CoP distance distribution, retarget error distributions, and 2-D PCA projections of the
motion latents and the video latents, coloured by label.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from catalog.sql import query  # noqa: E402
from robomirror.atomic import publish_bytes  # noqa: E402
from robomirror.paths import DataLayout  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _label(text: str) -> str:
    """A short label from a clip's text: its first few words."""
    words = (text or "").split("|")[0].replace("a person ", "").replace("C ", "").split()
    return " ".join(words[:2]) or "(no text)"


def _pca_plot(vectors, labels, title: str) -> str:
    """A 2-D PCA scatter of latent vectors, one colour per label."""
    z = np.stack(vectors.to_numpy()).astype(np.float64)
    z -= z.mean(0)
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    xy = u[:, :2] * s[:2]
    fig, ax = plt.subplots(figsize=(7, 5))
    for k, lab in enumerate(sorted(set(labels))):
        m = (labels == lab).to_numpy()
        ax.scatter(xy[m, 0], xy[m, 1], s=28, label=lab, color=plt.cm.tab20(k % 20))
    ax.legend(fontsize=7, ncol=2)
    ax.set(title=title)
    return _png(fig)


PLOTTED_JOINTS = (("left_hip_pitch_joint", 0), ("left_knee_joint", 3), ("right_hip_pitch_joint", 6),
                  ("right_knee_joint", 9))  # (name, column in the motion features: joint_pos comes first)


def _training_section(layout: DataLayout) -> str:
    """The newest training run: its paper-style table and, for a few test clips, joint angles decoded
    from the DiT's reconstruction next to those decoded from the ground-truth latent."""
    import json

    runs = sorted((layout.root / "runs" / "train").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    if not runs or not (layout.store_dir / "evals.lance").exists():
        return ""
    import lance

    meta = json.loads(runs[-1].read_text())
    rows = lance.dataset(str(layout.store_dir / "evals.lance")).to_table(
        filter=f"run_id = '{meta['run_id']}'").to_pylist()
    if not rows:
        return ""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    by = {(r["method"], r["metric"]): r for r in rows}
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    body = "".join("<tr><td>" + html.escape(meth) + "</td>" + "".join(
        f"<td>{_eval_cell(m, by[(meth, m)])}</td>" for m in metrics) + "</tr>" for meth in methods)
    r0 = rows[0]
    # rows written before pools of 32 have no `measured` column: their batch was the whole small split
    measured = all(r.get("measured") for r in rows)
    verdict = ("" if measured else
               f"<p><b>Not a result</b>: {r0['n_clips']} test clips, fewer than a pool of 32 candidates (the T2M "
               f"protocol); R@k was computed on one pool of {r0['batch_size']}, where chance R@1/2/3 is "
               + "/".join(f"{100 * min(k / max(r0['batch_size'], 1), 1):.1f}" for k in (1, 2, 3))
               + " %. The numbers below are not a measurement.</p>")
    out = (f"<h2>Motion-latent reconstruction (run {html.escape(meta['run_id'])})</h2>{verdict}"
           f"<p>test split {html.escape(r0['split_id'])}, {r0['n_clips']} clips, R@k pool {r0['batch_size']}"
           f"{'; ' + html.escape(r0['interval']) if r0.get('interval') else ''}; "
           f"DiT {html.escape(r0['dit_id'])}, evaluator {html.escape(r0['evaluator_id'])}, VAE "
           f"{html.escape(r0['vae_id'] or '')}, video {html.escape(r0['vlm_id'] or '')}. Real is the ceiling, "
           "shuffled video the floor.</p><table border='1' cellpadding='4'><tr><th>method</th>"
           f"{head}</tr>{body}</table>")
    fig = _decoded_plot(layout, meta)
    if fig:
        out += f"<h3>Decoded motion: DiT vs ground truth</h3><img alt='decoded motion' src='data:image/png;base64,{fig}'>"
    return out


def _eval_cell(metric: str, r: dict) -> str:
    """value [lo, hi] where the row carries its interval's bounds, else value ± half-width (older rows)."""
    scale, fmt = (100, ".1f") if metric.startswith("R@") else (1, ".2f")
    if r.get("ci_lo") is not None and r["ci_lo"] == r["ci_lo"]:
        return f"{scale * r['value']:{fmt}} [{scale * r['ci_lo']:{fmt}}, {scale * r['ci_hi']:{fmt}}]"
    return f"{scale * r['value']:{fmt}} ± {scale * r['ci95']:{fmt}}"


def _policy_section(layout: DataLayout, page_dir: Path) -> str:
    """The newest policy run: Succ / E_mpjpe / E_mpkpe per policy and simulator (the reference replay is
    the floor, zero error the ceiling), the teacher's and the student's training curves, and videos."""
    import json
    import os

    runs = sorted((layout.root / "runs" / "policy").glob("*/eval.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return ""
    s = json.loads(runs[-1].read_text())
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['succ']:.2f}</td><td>{v['mpjpe_rad']:.3f}</td>"
                   f"<td>{v['mpkpe_m']:.3f}</td><td>{v['clips']}</td></tr>" for k, v in s["table"].items())
    out = (f"<h2>Policy: teacher, student, sim2sim (run {html.escape(s['run_id'])})</h2>"
           f"<p>{s['train_seconds']} s of CPU training: a plumbing run, not the paper's 1e9 steps. Floor: "
           "replay_reference (the PD on the reference, no policy); ceiling: zero error. Rows also in the store's "
           "<code>policy_evals</code>.</p><table border='1' cellpadding='4'><tr><th>policy/simulator</th><th>Succ</th>"
           f"<th>E_mpjpe [rad]</th><th>E_mpkpe [m]</th><th>clips</th></tr>{body}</table>")
    by_ground = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(g)}</td><td>{v['succ']:.2f}</td>"
                        f"<td>{v['mpjpe_rad']:.3f}</td><td>{v['mpkpe_m']:.3f}</td><td>{v['clips']}</td></tr>"
                        for k, grounds in s.get("table_by_ground", {}).items() for g, v in grounds.items() if v["clips"])
    if by_ground:  # issue 22: scene clips (on their scene) next to flat ones; 'scene' is every scene clip
        out += ("<p>By ground: flat, every scene clip, then each scene kind.</p><table border='1' cellpadding='4'>"
                "<tr><th>policy/simulator</th><th>ground</th><th>Succ</th><th>E_mpjpe [rad]</th><th>E_mpkpe [m]</th>"
                f"<th>clips</th></tr>{by_ground}</table>")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    t = s["teacher"]
    its = [h["iteration"] for h in t]
    axes[0].plot(its, [h["mean_episode_len"] for h in t], "o-", color="C0")
    axes[0].set_ylabel("episode length [steps]", color="C0")
    twin = axes[0].twinx()
    twin.plot(its, [h["mean_episode_reward"] for h in t], "s--", color="C1")
    twin.set_ylabel("episode reward", color="C1")
    axes[0].set_xlabel("PPO iteration")
    axes[0].set_title("teacher (training episodes)")
    st = s["student"]
    axes[1].plot([h["round"] for h in st], [h["loss"] for h in st], "o-")
    axes[1].set_xlabel("DAgger round")
    axes[1].set_title("student loss")
    fig.tight_layout()
    out += f"<img alt='policy training' src='data:image/png;base64,{_png(fig)}'>"
    for v in s.get("videos", []):
        rel = os.path.relpath(v, page_dir)
        out += (f"<figure style='display:inline-block'><video src='{html.escape(rel)}' controls loop width='480'>"
                f"</video><figcaption>student (left) vs reference (right): {html.escape(Path(v).stem)}</figcaption></figure>")
    return out


def _deploy_section(layout: DataLayout, page_dir: Path) -> str:
    """The newest `deploy run`: its latency table, the loop's period-error histogram, its mp4."""
    import json
    import os

    runs = sorted((layout.root / "runs" / "deploy").glob("*/latency.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return ""
    r = json.loads(runs[-1].read_text())
    pe = r.get("period_error_ms") or {}
    rows = [("loop period error p50 / p99 / max [ms]", f"{pe.get('p50', 0):.2f} / {pe.get('p99', 0):.2f} / "
                                                       f"{pe.get('max', 0):.2f}"),
            ("video -> first latent at the robot [s]", r.get("video_to_first_latent_s")),
            ("video -> first policy action [s]", r.get("video_to_first_action_s"))]
    rows += [(f"first latent: {k} [ms]", v) for k, v in r.get("first_latent_stages_ms", {}).items()]
    body = "".join(f"<tr><td>{html.escape(str(a))}</td><td>{html.escape(str(b))}</td></tr>" for a, b in rows)
    out = (f"<h2>Deploy: video -> G1 ({html.escape(r['backend'])} backend, run {html.escape(r['run_id'])})</h2>"
           f"<table border='1' cellpadding='4'>{body}</table><p>Transitions: "
           + "; ".join(html.escape(t) for t in r.get("transitions", [])) + "</p>")
    hist = r.get("period_error_hist_ms")
    if hist:
        fig, ax = plt.subplots(figsize=(5, 2.5))
        edges = np.linspace(-5, 5, len(hist) + 1)
        ax.bar(edges[:-1], hist, width=edges[1] - edges[0], align="edge")
        ax.set_xlabel("period - 20 ms [ms]")
        ax.set_ylabel("cycles")
        ax.set_title("50 Hz loop jitter")
        out += f"<img alt='loop jitter' src='data:image/png;base64,{_png(fig)}'>"
    if r.get("mp4") and Path(r["mp4"]).is_file():
        out += f"<video src='{html.escape(os.path.relpath(r['mp4'], page_dir))}' controls loop width='480'></video>"
    return out


def _decoded_plot(layout: DataLayout, meta: dict, clips: int = 3) -> str:
    import lance
    import torch

    from latents.motion_vae import load_checkpoint

    v2m_path, tok_path = layout.store_dir / "v2m.lance", layout.store_dir / "motion_tokens.lance"
    vae_dir = layout.store_dir / "models" / str(meta.get("vae_id"))
    if not (v2m_path.exists() and tok_path.exists() and (vae_dir / "model.safetensors").exists()):
        return ""
    test = set()
    splits = layout.store_dir / "splits.lance"
    if splits.exists():  # v2m also holds the train clips' reconstructions: plot test clips only
        test = {r["clip_id"] for r in lance.dataset(str(splits)).to_table(
            filter=f"split_id = '{meta['split_id']}' AND side = 'test'", columns=["clip_id"]).to_pylist()}
    v2m = [r for r in lance.dataset(str(v2m_path)).to_table(filter=f"run_id = '{meta['run_id']}'").to_pylist()
           if r["clip_id"] in test][:clips]
    if not v2m:
        return ""
    vae = load_checkpoint(vae_dir)
    gt = {r["clip_id"]: r for r in lance.dataset(str(tok_path)).to_table(
        filter="clip_id IN (" + ", ".join(f"'{r['clip_id']}'" for r in v2m) + ")").to_pylist()}
    fig, axes = plt.subplots(len(v2m), len(PLOTTED_JOINTS), figsize=(14, 2.4 * len(v2m)), squeeze=False)
    for i, r in enumerate(v2m):
        with torch.no_grad():
            dec = [vae.model.decode(torch.tensor(np.asarray(t, dtype=np.float32))[None])[0].numpy() * vae.std + vae.mean
                   for t in (r["tokens"], gt[r["clip_id"]]["tokens"])]
        n = 5 * r["n_tokens"]
        for j, (name, col) in enumerate(PLOTTED_JOINTS):
            ax = axes[i][j]
            ax.plot(dec[1][:n, col], color="k", label="ground-truth latent")
            ax.plot(dec[0][:n, col], color="#c0504d", label="DiT from video")
            ax.set_title(f"{r['clip_id'][:8]} {name.replace('_joint', '')}", fontsize=8)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def build_report(layout: DataLayout, out: Path | None = None) -> Path:
    clips = query(layout, "SELECT dataset, view, duration_s, text FROM clips").df()
    figs: list[tuple[str, str]] = []
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.4))
    clips.groupby("dataset").size().plot.bar(ax=ax[0], color="#4878a8", title="clips per dataset")
    clips.assign(label=clips.text.map(_label)).groupby("label").size().sort_values().tail(15).plot.barh(
        ax=ax[1], color="#6a9f58", title="clips per label (top 15)")
    figs.append(("Corpus", _png(fig)))
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.hist(clips.duration_s, bins=20, color="#4878a8")
    ax.set(title="clip duration", xlabel="s", ylabel="clips")
    figs.append(("Durations", _png(fig)))
    try:
        rt = query(layout, "SELECT dataset, stable, dd_mean_m, mpkpe_aligned_mean_m, foot_skate_cm_s, "
                           "penetration_cm FROM retarget").df()
    except Exception:  # noqa: BLE001 - no retarget stage run yet
        rt = None
    if rt is not None and len(rt):
        fig, ax = plt.subplots(1, 4, figsize=(15, 3.2))
        rate = rt.groupby("dataset").stable.mean() * 100
        rate.plot.bar(ax=ax[0], color="#6a9f58", title="stability pass rate [%]", ylim=(0, 100))
        ax[1].hist(rt.dd_mean_m, bins=20, color="#c0504d")
        ax[1].axvline(0.1, ls="--", c="k")
        ax[1].set(title="mean CoM-CoP distance", xlabel="m")
        ax[2].hist(100 * rt.mpkpe_aligned_mean_m, bins=20, color="#4878a8")
        ax[2].set(title="MPKPE-aligned", xlabel="cm")
        ax[3].hist(rt.foot_skate_cm_s, bins=20, color="#8064a2")
        ax[3].set(title="foot skate", xlabel="cm/s")
        figs.append(("Retargeting (G1)", _png(fig)))
    try:
        tm = query(layout, "SELECT dataset, n_frames, ik_frames_per_s, total_frames_per_s FROM retarget_timing").df()
    except Exception:  # noqa: BLE001 - a data root retargeted before per-clip timing existed
        tm = None
    if tm is not None and len(tm):
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.2))
        ax[0].hist(tm.ik_frames_per_s, bins=20, color="#4878a8")
        ax[0].set(title=f"IK speed per clip (median {tm.ik_frames_per_s.median():.0f})", xlabel="frames/s, one core")
        ax[1].scatter(tm.n_frames, tm.total_frames_per_s, s=14, color="#c0504d")
        ax[1].set(title="whole retarget per clip", xlabel="frames in clip", ylabel="frames/s")
        figs.append(("Retarget speed (as measured when each clip was built)", _png(fig)))
    try:
        st = query(layout, "SELECT text, motion_latent, video_latent, vlm_id FROM store_clips").df()
    except Exception:  # noqa: BLE001 - no store yet
        st = None
    if st is not None and len(st) >= 3:
        from latents.video import is_tiny

        labels = st.text.map(_label)
        figs.append(("Motion latents", _pca_plot(st.motion_latent, labels, "motion latents, PCA (coloured by label)")))
        has_video = st.video_latent.notna().to_numpy()
        if has_video.sum() >= 3:
            vlm = str(st.vlm_id[has_video].iloc[0])
            note = " — tiny random VLM: plumbing, not a measurement" if is_tiny(vlm) else ""
            figs.append((f"Video latents ({vlm}){note}",
                         _pca_plot(st.video_latent[has_video], labels[has_video], f"video latents, PCA{note}")))
    body = "\n".join(f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>"
                     for t, b in figs)
    body += _training_section(layout)
    body += _policy_section(layout, (out or layout.root / "report" / "index.html").parent)
    body += _deploy_section(layout, (out or layout.root / "report" / "index.html").parent)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>RoboMirror report</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}} img{{max-width:100%}}</style></head><body>"
            f"<h1>RoboMirror data report</h1><p>{len(clips)} clips under {html.escape(str(layout.root))}"
            f" (sample data is synthetic)</p>{body}</body></html>")
    out = out or layout.root / "report" / "index.html"
    publish_bytes(out, page.encode())
    return out
