"""The debug video: G1 | human | source video, one frame per motion frame."""

from __future__ import annotations

import json

import numpy as np

from ingest.video import decode_mp4_bytes
from retarget.render import PANEL, first_clip, render_clip


def test_render_clip_writes_three_panels(retargeted, tmp_path):
    layout, _ = retargeted
    clip = first_clip(layout)
    out = render_clip(layout, clip, tmp_path / "clip.mp4", max_frames=30)
    frames, _, fps = decode_mp4_bytes(out.read_bytes())
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["clip_id"] == clip and fps == 30.0
    assert frames.shape[1:] == (PANEL, 3 * PANEL, 3)
    assert len(frames) == 30 and not (layout.root / "renders").exists()  # written only where asked
    g1 = frames[:, :, :PANEL].astype(int)
    assert g1.std() > 5  # the robot panel is not blank
    # each moving panel changes over the clip (the robot and the human skeleton both move)
    assert np.abs(g1[0] - g1[-1]).mean() > 0.1
    human = frames[:, :, PANEL:2 * PANEL].astype(int)
    assert np.abs(human[0] - human[-1]).mean() > 0.1
