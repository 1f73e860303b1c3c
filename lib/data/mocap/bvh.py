"""Biovision BVH motion capture: parser, writer, forward kinematics, and ASF/AMC -> BVH.

A BVH file holds a joint hierarchy (OFFSET of each joint from its parent in the rest pose,
CHANNELS, optional End Site) followed by MOTION: one line of channel values per frame.
Forward kinematics is the usual one::

    R_joint  = R(c1) · R(c2) · R(c3)       rotation channels in the order listed (intrinsic)
    G_joint  = G_parent · R_joint
    p_joint  = p_parent + G_parent · offset_joint      (root: offset + position channels)
    p_site   = p_joint + G_joint · site_offset

Angles are degrees. Units are whatever the file uses (cm, inches, mm ...): the importer takes a
unit and checks the result has human height. Everything is vectorised over frames; Python
loops run over joints only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from lib.data.mocap.asf_amc import (AmcMotion, AsfSkeleton, MocapFormatError, euler_to_matrix,
                                local_rotation, resampling_grid, root_split)

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
SITE_SUFFIX = "/site"           # positions() key of a joint's End Site


@dataclass
class BvhJoint:
    name: str
    parent: int                         # index into BvhClip.joints; -1 for the root
    offset: np.ndarray                  # (3,) from the parent joint, rest pose, file units
    channels: Tuple[str, ...]           # e.g. ("Zrotation", "Xrotation", "Yrotation")
    site: Optional[np.ndarray] = None   # (3,) End Site offset, if any


@dataclass
class BvhClip:
    joints: List[BvhJoint]
    frame_time: float                   # seconds per frame
    motion: np.ndarray                  # (N, total channels), degrees / file units
    source: str = ""
    _columns: List[slice] = field(default_factory=list, repr=False)

    def __post_init__(self):
        start = 0
        for j in self.joints:
            self._columns.append(slice(start, start + len(j.channels)))
            start += len(j.channels)
        if self.motion.ndim != 2 or self.motion.shape[1] != start:
            raise MocapFormatError(f"{self.source or 'BVH'}: motion has shape {self.motion.shape}, "
                                   f"the hierarchy declares {start} channels")

    @property
    def num_frames(self) -> int:
        return len(self.motion)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def values(self, index: int) -> np.ndarray:
        """(N, len(channels)) values of joint ``joints[index]``."""
        return self.motion[:, self._columns[index]]

    def resample(self, fps_out: float) -> "BvhClip":
        """Linear interpolation of the channels at ``fps_out`` (angles unwrapped first)."""
        lo, hi, w = resampling_grid(self.num_frames, self.fps, fps_out)
        rot = np.array([c in ROTATION_CHANNELS for j in self.joints for c in j.channels])
        m = self.motion.copy()
        m[:, rot] = np.unwrap(m[:, rot], period=360.0, axis=0)
        return BvhClip(self.joints, 1.0 / fps_out, (1 - w) * m[lo] + w * m[hi], self.source)


# ----------------------------------------------------------------------------- reading
class _Tokens:
    """Whitespace tokens of the HIERARCHY part, with line numbers for error messages."""

    def __init__(self, path: Path, lines: List[str], first_line: int):
        self.path, self.items, self.i = path, [], 0
        for no, line in enumerate(lines, first_line):
            self.items += [(tok, no) for tok in line.split()]

    def next(self, what: str) -> Tuple[str, int]:
        if self.i >= len(self.items):
            raise MocapFormatError(f"{self.path}: file ends while reading {what}")
        self.i += 1
        return self.items[self.i - 1]

    def expect(self, word: str):
        tok, no = self.next(f"'{word}'")
        if tok.upper() != word.upper():
            raise MocapFormatError(f"{self.path}:{no}: expected '{word}', found '{tok}'")

    def number(self, what: str) -> float:
        tok, no = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise MocapFormatError(f"{self.path}:{no}: expected a number for {what}, "
                                   f"found '{tok}'") from None


def _read_joint(tokens: _Tokens, name: str, parent: int, joints: List[BvhJoint]):
    tokens.expect("{")
    tokens.expect("OFFSET")
    offset = np.array([tokens.number(f"the OFFSET of '{name}'") for _ in range(3)])
    channels: Tuple[str, ...] = ()
    index = len(joints)
    joints.append(BvhJoint(name, parent, offset, channels))
    while True:
        tok, no = tokens.next(f"the body of joint '{name}'")
        key = tok.upper()
        if key == "CHANNELS":
            count = int(tokens.number(f"the channel count of '{name}'"))
            channels = tuple(tokens.next(f"the channels of '{name}'")[0] for _ in range(count))
            bad = [c for c in channels if c not in POSITION_CHANNELS + ROTATION_CHANNELS]
            if bad:
                raise MocapFormatError(f"{tokens.path}:{no}: joint '{name}' has unknown channels "
                                       f"{bad}; expected X/Y/Z position/rotation")
            joints[index].channels = channels
        elif key == "JOINT":
            child, _ = tokens.next("a joint name")
            _read_joint(tokens, child, index, joints)
        elif key == "END":
            tokens.expect("Site")
            tokens.expect("{")
            tokens.expect("OFFSET")
            joints[index].site = np.array([tokens.number(f"the End Site of '{name}'")
                                           for _ in range(3)])
            tokens.expect("}")
        elif key == "}":
            return
        else:
            raise MocapFormatError(f"{tokens.path}:{no}: unexpected '{tok}' in joint '{name}'")


def read_bvh(path, max_frames: Optional[int] = None) -> BvhClip:
    """Parse a BVH file; ``max_frames`` reads only the first frames."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BVH file not found: {path}")
    lines = path.read_text(errors="replace").lstrip("\ufeff").splitlines()
    motion_at = next((i for i, ln in enumerate(lines) if ln.strip().upper() == "MOTION"), None)
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None or lines[first].strip().upper() != "HIERARCHY" or motion_at is None:
        raise MocapFormatError(f"{path}: not a BVH file (expected a HIERARCHY line first and a "
                               f"MOTION section)")
    tokens = _Tokens(path, lines[first + 1:motion_at], first_line=first + 2)
    tokens.expect("ROOT")
    root, _ = tokens.next("the root name")
    joints: List[BvhJoint] = []
    _read_joint(tokens, root, -1, joints)
    if tokens.i != len(tokens.items):
        tok, no = tokens.items[tokens.i]
        raise MocapFormatError(f"{path}:{no}: '{tok}' after the root joint (one ROOT only)")
    head = {}
    for no in range(motion_at + 1, min(motion_at + 3, len(lines))):
        key, _, value = lines[no].partition(":")
        head[key.strip().lower()] = (value.strip(), no + 1)
    try:
        n_declared = int(head["frames"][0])
        frame_time = float(head["frame time"][0])
    except (KeyError, ValueError):
        raise MocapFormatError(f"{path}:{motion_at + 2}: expected 'Frames: N' and "
                               f"'Frame Time: T' after MOTION") from None
    if frame_time <= 0:
        raise MocapFormatError(f"{path}:{head['frame time'][1]}: Frame Time must be positive")
    width = sum(len(j.channels) for j in joints)
    rows = [ln for ln in lines[motion_at + 3:] if ln.strip()]
    if max_frames is not None:
        rows = rows[:max_frames]
    elif len(rows) != n_declared:
        raise MocapFormatError(f"{path}: 'Frames: {n_declared}' but {len(rows)} frame lines")
    try:
        motion = np.array(" ".join(rows).split(), dtype=np.float64)
    except ValueError:
        raise MocapFormatError(f"{path}: a frame line holds something that is not a number") \
            from None
    if motion.size != len(rows) * width or not rows:
        raise MocapFormatError(f"{path}: expected {len(rows)} frames x {width} channels, found "
                               f"{motion.size} values")
    motion = motion.reshape(len(rows), width)
    if not np.isfinite(motion).all():
        raise MocapFormatError(f"{path}: NaN or inf in the motion data")
    return BvhClip(joints, frame_time, motion, source=str(path))


# ----------------------------------------------------------------------------- writing
def write_bvh(path, clip: BvhClip, decimals: int = 6) -> Path:
    """Write ``clip`` as a BVH file (tabs, one frame per line)."""
    path = Path(path)
    children: Dict[int, List[int]] = {}
    for i, j in enumerate(clip.joints):
        children.setdefault(j.parent, []).append(i)
    out = ["HIERARCHY"]
    written: List[int] = []                 # joint indices in file order
    fmt = f"{{:.{decimals}f}}"

    def vec(v):
        return " ".join(fmt.format(x) for x in v)

    def emit(i, depth):
        j, pad = clip.joints[i], "\t" * depth
        written.append(i)
        out.append(f"{pad}{'ROOT' if j.parent < 0 else 'JOINT'} {j.name}")
        out.append(pad + "{")
        out.append(f"{pad}\tOFFSET {vec(j.offset)}")
        out.append(f"{pad}\tCHANNELS {len(j.channels)} {' '.join(j.channels)}".rstrip())
        for c in children.get(i, []):
            emit(c, depth + 1)
        if j.site is not None:
            out.extend([f"{pad}\tEnd Site", pad + "\t{", f"{pad}\t\tOFFSET {vec(j.site)}",
                        pad + "\t}"])
        out.append(pad + "}")

    emit(children[-1][0], 0)
    out += ["MOTION", f"Frames: {clip.num_frames}", f"Frame Time: {clip.frame_time:.15g}"]
    motion = np.concatenate([clip.values(i) for i in written], axis=1)
    out += [vec(row) for row in motion]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
    return path


# ----------------------------------------------------------------------------- FK
def _rotation(values: np.ndarray, channels: Tuple[str, ...]) -> np.ndarray:
    """(N, 3, 3) from a joint's values: the listed rotations composed intrinsically."""
    idx = [k for k, c in enumerate(channels) if c in ROTATION_CHANNELS]
    if not idx:
        return np.broadcast_to(np.eye(3), (len(values), 3, 3))
    axes = "".join(channels[k][0].lower() for k in idx)
    # intrinsic R1·R2·R3 = fixed-axis rotations applied in the reverse order
    return euler_to_matrix(np.deg2rad(values[:, idx[::-1]]), axes[::-1])


def forward_kinematics(clip: BvhClip) -> Dict[str, np.ndarray]:
    """World positions (N, 3) of every joint, and of every End Site as ``name + '/site'``."""
    n = clip.num_frames
    pos: Dict[int, np.ndarray] = {}
    rot: Dict[int, np.ndarray] = {}
    out: Dict[str, np.ndarray] = {}
    for i, j in enumerate(clip.joints):     # parents come first in file order
        values = clip.values(i)
        if j.parent < 0:
            p = np.tile(j.offset, (n, 1))
            for k, c in enumerate(j.channels):
                if c in POSITION_CHANNELS:
                    p[:, POSITION_CHANNELS.index(c)] += values[:, k]
            g = _rotation(values, j.channels)
        else:
            p = pos[j.parent] + rot[j.parent] @ j.offset
            g = rot[j.parent] @ _rotation(values, j.channels)
        pos[i], rot[i], out[j.name] = p, g, p
        if j.site is not None:
            out[j.name + SITE_SUFFIX] = p + g @ j.site
    return out


# ----------------------------------------------------------------------------- ASF/AMC -> BVH
def _matrix_to_intrinsic_zxy(m: np.ndarray) -> np.ndarray:
    """(N, 3, 3) -> (N, 3) degrees (z, x, y) with m = Rz(z)·Rx(x)·Ry(y)."""
    from scipy.spatial.transform import Rotation
    return Rotation.from_matrix(m).as_euler("ZXY", degrees=True)


def asf_to_bvh(skeleton: AsfSkeleton, motion: AmcMotion) -> BvhClip:
    """The same motion as a BVH clip in millimetres: one joint per ASF bone, at the bone's start.

    An ASF bone b with parent p becomes joint b, offset ``direction_p · length_p`` from joint p
    (zero under the root), with the local rotation ``C_b · M_b · C_bᵀ`` as ZXY Euler angles; a
    bone without children gets an End Site at its end. Joint names are the ASF bone names.
    """
    unit = skeleton.unit_mm
    n = motion.num_frames
    trans, root_rot = root_split(skeleton, motion.values["root"])
    c_root = euler_to_matrix(skeleton.to_radians(skeleton.root_orientation),
                             skeleton.root_axis_order)
    rotation = ("Zrotation", "Xrotation", "Yrotation")
    joints = [BvhJoint("root", -1, np.zeros(3), POSITION_CHANNELS + rotation)]
    columns = [trans * unit, _matrix_to_intrinsic_zxy(c_root @ root_rot @ c_root.T)]
    index = {"root": 0}
    has_child = {skeleton.parent[b] for b in skeleton.order}
    for name in skeleton.order:
        bone, par = skeleton.bones[name], skeleton.parent[name]
        offset = np.zeros(3) if par == "root" else (
            skeleton.bones[par].direction * skeleton.bones[par].length * unit)
        site = None if name in has_child else bone.direction * bone.length * unit
        index[name] = len(joints)
        joints.append(BvhJoint(name, index[par], offset, rotation, site))
        local = local_rotation(skeleton, name, motion)
        columns.append(np.zeros((n, 3)) if local is None else _matrix_to_intrinsic_zxy(local))
    return BvhClip(joints, 1.0 / motion.fps, np.concatenate(columns, axis=1),
                   source=f"{motion.source} (as BVH)")
