"""BVH motion files: the HIERARCHY and MOTION sections parsed, forward kinematics to joint positions.

The format (Biovision), as the public loaders of BONES-SEED's SOMA BVH read it (NVlabs' BVH reader
beside the SOMA example `parse_bvh_motion`, the seed-viewer's player, mocap converters):

  HIERARCHY
  ROOT <name> { OFFSET x y z  CHANNELS n <channel>...  JOINT <name> { ... }  End Site { OFFSET x y z } }
  MOTION
  Frames: <T>
  Frame Time: <dt [s]>
  <T rows of sum(n) numbers, the channels in declaration order>

- Channels are per joint and in any order: `Xposition Yposition Zposition` and `Xrotation Yrotation
  Zrotation` [degrees]. Rotations compose **intrinsically in the listed order**: `Zrotation Yrotation
  Xrotation` is R = Rz(z) Ry(y) Rx(x) (scipy's upper-case `from_euler("ZYX")`, as those loaders call it).
- A joint's position channels **replace** its OFFSET as its translation in the parent frame (the root's
  carry the motion; exporters that give every joint six channels write the offset there).
- `End Site` is a tip with an offset and no channels: not a joint, not read.
- Units are the file's (SOMA: centimetres); a corpus reader scales them. Tokens are whitespace-separated,
  so `{` on the joint's own line and CRLF line ends read the same.

Anything else is refused with a typed reason naming the file and what was found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.failures import Reason
from robomirror.errors import SourceError

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")


@dataclass(frozen=True)
class BvhMotion:
    """One BVH file as declared.

    names/parents: the joints (End Sites excluded) in declaration order, parent -1 for the root;
    offsets: (J, 3) [file units]; channels: per joint, its channel names in order;
    values: (T, sum of channel counts) [file units, degrees].
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    frame_time_s: float
    values: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.values.shape[0])


def _bad(path: str, detail: str, reason: Reason = Reason.BAD_SHAPE) -> SourceError:
    return SourceError(reason, path, f"not a readable BVH: {detail}")


def _floats(tokens: list[str], k: int, n: int, path: str, what: str) -> list[float]:
    if len(tokens) < k + n:
        raise _bad(path, f"{what}: expected {n} numbers, the file ends")
    try:
        return [float(t) for t in tokens[k:k + n]]
    except ValueError:
        raise _bad(path, f"{what} needs {n} numbers, found {tokens[k:k + n]}") from None


def parse_hierarchy(tokens: list[str], path: str) -> tuple[list[str], list[int], list[list[float]], list[tuple[str, ...]], int]:
    """(names, parents, offsets, channels, index of the MOTION token)."""
    if not tokens or tokens[0] != "HIERARCHY":
        raise _bad(path, f"expected HIERARCHY first, found {tokens[0] if tokens else 'an empty file'!r}")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    stack: list[int | None] = []  # open braces: a joint index, or None for an End Site
    pending: int | None = None
    k = 1
    while k < len(tokens):
        tok = tokens[k]
        if tok == "MOTION":
            break
        if tok in ("ROOT", "JOINT"):
            if k + 1 >= len(tokens):
                raise _bad(path, f"{tok} without a name")
            if (tok == "ROOT") != (not stack):
                raise _bad(path, f"{tok} {tokens[k + 1]} {'inside a joint' if stack else 'outside any ROOT'}")
            if tokens[k + 1] in names:
                raise _bad(path, f"joint {tokens[k + 1]!r} is declared twice")
            parent = next((s for s in reversed(stack) if s is not None), -1) if stack else -1
            if stack and stack[-1] is None:
                raise _bad(path, f"JOINT {tokens[k + 1]} inside an End Site")
            names.append(tokens[k + 1])
            parents.append(parent)
            offsets.append([0.0, 0.0, 0.0])
            channels.append(())
            pending, k = len(names) - 1, k + 2
        elif tok == "End":
            if k + 1 >= len(tokens) or tokens[k + 1] != "Site":
                raise _bad(path, "`End` not followed by `Site`")
            pending, k = None, k + 2
        elif tok == "{":
            stack.append(pending)
            k += 1
        elif tok == "}":
            if not stack:
                raise _bad(path, "a `}` closes nothing")
            stack.pop()
            k += 1
        elif tok == "OFFSET":
            vals = _floats(tokens, k + 1, 3, path, "OFFSET")
            if stack and stack[-1] is not None:
                offsets[stack[-1]] = vals
            k += 4
        elif tok == "CHANNELS":
            if not stack or stack[-1] is None:
                raise _bad(path, "CHANNELS outside a joint (an End Site has none)")
            try:
                n = int(tokens[k + 1])
            except (IndexError, ValueError):
                raise _bad(path, f"CHANNELS needs a count, found {tokens[k + 1:k + 2]}") from None
            names_ch = tuple(tokens[k + 2:k + 2 + n])
            unknown = [c for c in names_ch if c not in POSITION_CHANNELS + ROTATION_CHANNELS]
            if len(names_ch) != n or unknown or len(set(names_ch)) != n:
                raise _bad(path, f"joint {names[stack[-1]]}: CHANNELS {n} {' '.join(names_ch)}; channels are "
                                 f"{POSITION_CHANNELS + ROTATION_CHANNELS}, each at most once",
                           Reason.BAD_COLUMNS)
            channels[stack[-1]] = names_ch
            k += 2 + n
        else:
            raise _bad(path, f"unexpected {tok!r} in the HIERARCHY (after joint {names[-1] if names else 'none'})")
    if k >= len(tokens):
        raise _bad(path, "no MOTION section (a truncated file?)")
    if stack:
        raise _bad(path, f"{len(stack)} brace(s) left open before MOTION")
    if not names:
        raise _bad(path, "no ROOT joint")
    return names, parents, offsets, channels, k


def parse_bvh(text: str, path: str) -> BvhMotion:
    tokens = text.split()
    names, parents, offsets, channels, k = parse_hierarchy(tokens, path)
    head = tokens[k + 1:k + 6]
    if len(head) < 5 or head[0] != "Frames:" or head[2:4] != ["Frame", "Time:"]:
        raise _bad(path, f"MOTION must be followed by `Frames: <n>` and `Frame Time: <s>`, found {' '.join(head)!r}")
    try:
        n_frames, dt = int(head[1]), float(head[4])
    except ValueError:
        raise _bad(path, f"Frames/Frame Time are not numbers: {head[1]!r}, {head[4]!r}") from None
    if n_frames <= 0:
        raise SourceError(Reason.EMPTY, path, f"Frames: {n_frames}")
    if not dt > 0:
        raise SourceError(Reason.NON_MONOTONIC_TIME, path, f"Frame Time must be > 0 s, found {dt}")
    try:
        flat = np.array(tokens[k + 6:], dtype=np.float64)
    except ValueError as e:
        raise _bad(path, f"a MOTION value is not a number: {e}", Reason.BAD_CSV) from e
    width = sum(len(c) for c in channels)
    if width == 0:
        raise _bad(path, "no joint declares CHANNELS", Reason.BAD_COLUMNS)
    if flat.size != n_frames * width:
        rows, rest = divmod(flat.size, width)
        raise SourceError(Reason.HEADER_MISMATCH, path,
                          f"`Frames: {n_frames}` x {width} channels = {n_frames * width} values, the MOTION section "
                          f"holds {flat.size} ({rows} rows{f' and {rest} values' if rest else ''}): a truncated "
                          "or mis-declared file")
    values = flat.reshape(n_frames, width)
    if not np.isfinite(values).all():
        raise SourceError(Reason.NON_FINITE, path, "NaN or inf in the MOTION values")
    return BvhMotion(tuple(names), tuple(parents), np.asarray(offsets, dtype=np.float64),
                     tuple(channels), dt, values)


def read_bvh(path: str) -> BvhMotion:
    from ingest.g1_csv import check_not_gated

    check_not_gated(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise _bad(path, f"not a UTF-8 text file: {e}") from e
    return parse_bvh(text, path)


def axis_rotation(axis: str, angle_rad: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3, 3) rotations about x, y or z."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    o, z = np.ones_like(c), np.zeros_like(c)
    rows = {"X": ((o, z, z), (z, c, -s), (z, s, c)), "Y": ((c, z, s), (z, o, z), (-s, z, c)),
            "Z": ((c, -s, z), (s, c, z), (z, z, o))}[axis]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def local_transforms(m: BvhMotion) -> tuple[np.ndarray, np.ndarray]:
    """Per joint and frame: rotation (T, J, 3, 3) and translation in the parent frame (T, J, 3) [file units]."""
    t, j = m.n_frames, len(m.names)
    rot = np.broadcast_to(np.eye(3), (t, j, 3, 3)).copy()
    trans = np.broadcast_to(m.offsets, (t, j, 3)).copy()
    col = 0
    for i, chans in enumerate(m.channels):
        for c in chans:
            v = m.values[:, col]
            if c in POSITION_CHANNELS:
                trans[:, i, "XYZ".index(c[0])] = v
            else:
                rot[:, i] = rot[:, i] @ axis_rotation(c[0], np.deg2rad(v))  # intrinsic: listed order
            col += 1
    return rot, trans


def forward_kinematics(m: BvhMotion) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions (T, J, 3) [file units] and rotations (T, J, 3, 3) in the file's frame."""
    rot, trans = local_transforms(m)
    pos_w, rot_w = np.zeros_like(trans), np.zeros_like(rot)
    for i, p in enumerate(m.parents):  # parents are declared before their children
        if p < 0:
            pos_w[:, i], rot_w[:, i] = trans[:, i], rot[:, i]
        else:
            pos_w[:, i] = pos_w[:, p] + np.einsum("tij,tj->ti", rot_w[:, p], trans[:, i])
            rot_w[:, i] = rot_w[:, p] @ rot[:, i]
    return pos_w, rot_w
