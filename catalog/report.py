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
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>RoboMirror report</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}} img{{max-width:100%}}</style></head><body>"
            f"<h1>RoboMirror data report</h1><p>{len(clips)} clips under {html.escape(str(layout.root))}"
            f" (sample data is synthetic)</p>{body}</body></html>")
    out = out or layout.root / "report" / "index.html"
    publish_bytes(out, page.encode())
    return out
