"""`nearest --html PATH`: a page showing, for the query and each neighbour, the source video, the
rendered G1 motion (G1 | human joints | source), the texts and the distance.

Videos are written next to the page in `<page stem>_files/` and linked relatively, so the folder
can be copied or served as is. G1 previews are rendered once per clip into
`<data>/renders/<clip>.preview.mp4` and reused while their sidecar JSON says the current
`retarget.render.RENDER_REVISION` (a preview drawn before scenes were drawn in the human panel is
rendered again). A scene clip's G1 and human panels show its scene.
"""

from __future__ import annotations

import html
from pathlib import Path

from catalog.nearest import Neighbour, Query
from robomirror.atomic import publish_bytes
from robomirror.paths import DataLayout
from robomirror.shards import find_sample

PREVIEW_STRIDE = 3  # every third frame: a 5 s clip renders in ~5 s with software GL

# Each <video> reports loaded/failed into #video-status, so a headless browser (and a person) can
# tell whether every video on the page plays.
STATUS_JS = """
const videos = [...document.querySelectorAll('video')];
const status = document.getElementById('video-status');
let loaded = 0, failed = 0;
function show() {
  status.dataset.loaded = loaded; status.dataset.failed = failed;
  status.textContent = `${loaded} of ${videos.length} videos loaded` + (failed ? `, ${failed} failed` : '');
}
for (const v of videos) {
  const ok = () => { loaded++; show(); }, bad = () => { failed++; show(); };
  if (v.readyState >= 2) ok(); else { v.addEventListener('loadeddata', ok, {once: true});
                                      v.addEventListener('error', bad, {once: true}); }
}
show();
"""
CSS = """
body{font-family:sans-serif;margin:1.5em;background:#fafafa}
.card{display:flex;gap:1em;align-items:flex-start;background:#fff;border:1px solid #ddd;border-radius:6px;
      padding:.8em;margin:.8em 0}
.card.query{border:2px solid #4878a8}
video{background:#000;border-radius:4px}
.src{width:192px;height:192px}.g1{height:192px}
.meta{font-size:.9em;max-width:28em}.meta h3{margin:.1em 0 .4em}
.d{font-family:monospace;font-size:1.1em}.bad{color:#c0504d}.good{color:#4a8a3c}
#video-status,.models{color:#555;font-size:.9em}
figure{margin:0}figcaption{font-size:.8em;color:#666;text-align:center}
"""


def _rendered_revision(sidecar: Path) -> int | None:
    import json

    try:
        return json.loads(sidecar.read_text()).get("render_revision")
    except (OSError, ValueError, AttributeError):
        return None


def _preview(layout: DataLayout, clip_id: str) -> bytes:
    from retarget.render import RENDER_REVISION, render_clip

    path = layout.root / "renders" / f"{clip_id}.preview.mp4"
    if not path.is_file() or _rendered_revision(path.with_suffix(".json")) != RENDER_REVISION:
        render_clip(layout, clip_id, path, stride=PREVIEW_STRIDE)
    return path.read_bytes()


def _video_tag(src: str, cls: str, caption: str) -> str:
    return (f"<figure><video class='{cls}' src='{html.escape(src)}' title='{html.escape(caption)}' muted loop "
            f"autoplay playsinline controls preload='auto'></video><figcaption>{html.escape(caption)}</figcaption></figure>")


def _models(layout: DataLayout) -> str:
    """Which models made the latents, with the tiny VLM called what it is."""
    from catalog.sql import store_models
    from latents.video import vlm_label

    models = store_models(layout)
    if models is None:  # say nothing rather than fail the page
        return ""
    vae, vlm, text = models
    return (f"<p class='models'>motion: {html.escape(str(vae))} · video: {html.escape(vlm_label(vlm))} · "
            f"text: {html.escape(str(text))}</p>")


def _texts(h: Neighbour | None) -> list[str]:
    if h is None:
        return []
    return list(h.texts) or ([h.text] if h.text else [])


def _card(layout: DataLayout, assets: Path, clip_id: str, heading: str, info: list[str], texts: list[str],
          cls: str = "") -> str:
    """One clip: its source video, its G1 preview and what is known about it."""
    sample = find_sample(layout.root, "ingest", clip_id) or {}
    videos = []
    if "video.mp4" in sample:
        publish_bytes(assets / f"{clip_id}.source.mp4", sample["video.mp4"])
        videos.append(_video_tag(f"{assets.name}/{clip_id}.source.mp4", "src", "source video"))
    publish_bytes(assets / f"{clip_id}.g1.mp4", _preview(layout, clip_id))
    videos.append(_video_tag(f"{assets.name}/{clip_id}.g1.mp4", "g1", "G1 | human joints | source"))
    lis = "".join(f"<li>{html.escape(t)}</li>" for t in texts[:6])
    return (f"<div class='card {cls}'>{''.join(videos)}<div class='meta'><h3>{heading}</h3>"
            f"{''.join(f'<div>{i}</div>' for i in info)}<ul>{lis}</ul></div></div>")


def write_nearest_page(layout: DataLayout, query: Query, hits: list[Neighbour], out: Path,
                       query_row: Neighbour | None = None, progress: bool = False) -> Path:
    """Write the page (and its videos) atomically; returns its path."""
    from tqdm import tqdm

    from ingest.video import decode_mp4_bytes, encode_mp4

    out = Path(out).resolve()
    assets = out.parent / f"{out.stem}_files"
    assets.mkdir(parents=True, exist_ok=True)
    cards = []
    if query.kind == "clip":
        q = query_row
        info = [f"<code>{html.escape(query.value)}</code>"]
        if q is not None:
            info.append(f"{html.escape(q.dataset)} · {html.escape(q.view)} · {_verdict(q)}")
        cards.append(_card(layout, assets, query.value, "Query clip", info,
                           _texts(q), "query"))
    elif query.kind == "video":
        frames, _, fps = decode_mp4_bytes(Path(query.value).read_bytes())  # re-encoded: any input plays
        publish_bytes(assets / "query.mp4", encode_mp4(list(frames), fps))
        cards.append(f"<div class='card query'>{_video_tag(f'{assets.name}/query.mp4', 'src', 'query video')}"
                     f"<div class='meta'><h3>Query video</h3><div><code>{html.escape(str(query.value))}</code></div>"
                     f"<div>embedded with the {html.escape(query.view or '')} prompt</div></div></div>")
    else:
        cards.append(f"<div class='card query'><div class='meta'><h3>Query text</h3>"
                     f"<div>“{html.escape(query.value)}”</div></div></div>")
    for i, h in enumerate(tqdm(hits, desc="nearest page (G1 previews)", unit="clip", disable=not progress), 1):
        info = [f"<code>{html.escape(h.clip_id)}</code>", f"<span class='d'>d = {h.distance:.4f}</span> (cosine)",
                f"{html.escape(h.dataset)} · {html.escape(h.view)} · {_verdict(h)}"]
        if h.mpkpe_aligned_mean_m is not None:
            info.append(f"MPKPE-aligned {100 * h.mpkpe_aligned_mean_m:.1f} cm")
        cards.append(_card(layout, assets, h.clip_id, f"#{i}", info, _texts(h)))
    title = f"nearest in {query.space} space to {query.kind} {query.value}"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>Nearest neighbours</h1>"
            f"<p>{html.escape(title)} · {len(hits)} neighbours · data root {html.escape(str(layout.root))}</p>"
            f"{_models(layout)}<p id='video-status' data-loaded='0' data-failed='0'>videos loading…</p>"
            f"{''.join(cards)}<script>{STATUS_JS}</script></body></html>")
    publish_bytes(out, page.encode())
    return out


def _verdict(h: Neighbour) -> str:
    if h.stable is None:
        return "stability ?"
    return "<span class='good'>stable</span>" if h.stable else "<span class='bad'>unstable</span>"
