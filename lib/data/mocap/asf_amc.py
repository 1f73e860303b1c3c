"""Acclaim ASF/AMC motion capture (the CMU Graphics Lab database format): parser and FK.

ASF holds the skeleton (bones with a rest direction and length in the global frame, a local
axis frame ``C`` given as Euler angles, the rotational degrees of freedom), AMC the per-frame
dof values. Forward kinematics is the standard Acclaim one::

    L_bone   = C · M(dof angles) · C⁻¹          (C from the bone's ``axis`` line and order)
    G_bone   = G_parent · L_bone                 (G_root = C_root · M_root · C_root⁻¹)
    end_bone = end_parent + G_bone · (direction · length)

Euler orders: an order string such as ``XYZ`` (or a dof list ``rx ry rz``) means the rotations
are applied in that sequence about fixed axes, i.e. M = Rz · Ry · Rx. Everything is vectorised
over frames; the only Python loops run over bones (~31) or, once, over the AMC text lines.
Positions come out in ASF length units; :attr:`AsfSkeleton.unit_mm` converts to millimetres.

Slightly over 400 lines: ASF parsing, AMC parsing and their forward kinematics share the
bone-axis conventions, kept in one file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.spatial.transform import Rotation

from lib.errors import PoseError

INCH_MM = 25.4
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf"


class MocapFormatError(PoseError, ValueError):
    """A motion-capture file that cannot be read; the message names the file and the line."""


# ----------------------------------------------------------------------------- rotations
def euler_to_matrix(angles_rad: np.ndarray, order: str) -> np.ndarray:
    """Fixed-axis Euler angles (..., len(order)) applied in ``order`` -> (..., 3, 3).

    scipy's extrinsic (lower-case) sequence; it agrees with the product of the single-axis
    matrices to ~1e-15."""
    angles_rad = np.asarray(angles_rad, dtype=np.float64)
    shape = angles_rad.shape[:-1]
    flat = angles_rad.reshape(-1, len(order))
    if not order or not len(flat):
        return np.broadcast_to(np.eye(3), shape + (3, 3)).copy()
    return Rotation.from_euler(order.lower(), flat).as_matrix().reshape(shape + (3, 3))


# ----------------------------------------------------------------------------- ASF
@dataclass
class AsfBone:
    name: str
    id: int
    direction: np.ndarray          # (3,) unit vector, global frame of the rest pose
    length: float                  # ASF length units
    axis: np.ndarray               # (3,) Euler angles of the local frame C (ASF angle unit)
    axis_order: str                # e.g. "XYZ"
    dof: Tuple[str, ...] = ()      # e.g. ("rx", "ry", "rz"), in AMC value order
    limits: Tuple[Tuple[float, float], ...] = ()


@dataclass
class AsfSkeleton:
    name: str
    length_scale: float            # ':units length' (CMU: 0.45, i.e. 1 unit = 1/0.45 inch)
    angle_unit: str                # 'deg' or 'rad'
    root_order: Tuple[str, ...]    # AMC value order of the root, e.g. (TX, TY, TZ, RX, RY, RZ)
    root_axis_order: str           # Euler order of the root orientation
    root_position: np.ndarray      # (3,) length units
    root_orientation: np.ndarray   # (3,) angle units
    bones: Dict[str, AsfBone]
    parent: Dict[str, str]         # bone -> parent bone ('root' for the top bones)
    source: str = ""

    @property
    def unit_mm(self) -> float:
        """Millimetres per ASF length unit: (1 / length_scale) inch."""
        return INCH_MM / self.length_scale

    @property
    def order(self) -> List[str]:
        """Bones with every parent before its children (roots' children first)."""
        children: Dict[str, List[str]] = {}
        for child, par in self.parent.items():
            children.setdefault(par, []).append(child)
        out, stack = [], list(reversed(children.get("root", [])))
        while stack:
            b = stack.pop()
            out.append(b)
            stack.extend(reversed(children.get(b, [])))
        return out

    def to_radians(self, values):
        values = np.asarray(values, dtype=np.float64)
        return np.deg2rad(values) if self.angle_unit == "deg" else values


def _sections(lines: List[str]):
    """Split ASF lines into (keyword, [(lineno, text), ...]) by the ':keyword' headers."""
    current, body = None, []
    for no, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith(":"):
            if current is not None:
                yield current, body
            head = text[1:].split(None, 1)
            current, body = head[0].lower(), ([(no, head[1])] if len(head) > 1 else [])
        else:
            body.append((no, text))
    if current is not None:
        yield current, body


def read_asf(path) -> AsfSkeleton:
    """Parse an ASF skeleton file (CRLF or LF line endings)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ASF skeleton file not found: {path}")
    lines = path.read_text(errors="replace").splitlines()

    def fail(no, msg):
        raise MocapFormatError(f"{path}:{no}: {msg}")

    name, length_scale, angle_unit = path.stem, 1.0, "deg"
    root_order, root_axis = ("TX", "TY", "TZ", "RX", "RY", "RZ"), "XYZ"
    root_pos, root_ori = np.zeros(3), np.zeros(3)
    bones: Dict[str, AsfBone] = {}
    parent: Dict[str, str] = {}
    for key, body in _sections(lines):
        if key == "name" and body:
            name = body[0][1]
        elif key == "units":
            for no, text in body:
                parts = text.split()
                if parts[0] == "length":
                    length_scale = float(parts[1])
                elif parts[0] == "angle":
                    angle_unit = parts[1].lower()[:3]
                    if angle_unit not in ("deg", "rad"):
                        fail(no, f"unknown angle unit '{parts[1]}' (expected deg or rad)")
        elif key == "root":
            for no, text in body:
                parts = text.split()
                if parts[0] == "order":
                    root_order = tuple(p.upper() for p in parts[1:])
                elif parts[0] == "axis":
                    root_axis = parts[1].upper()
                elif parts[0] == "position":
                    root_pos = np.array([float(v) for v in parts[1:4]])
                elif parts[0] == "orientation":
                    root_ori = np.array([float(v) for v in parts[1:4]])
        elif key == "bonedata":
            bones = _parse_bonedata(body, fail)
        elif key == "hierarchy":
            for no, text in body:
                parts = text.split()
                if parts[0] in ("begin", "end"):
                    continue
                for child in parts[1:]:
                    if child not in bones:
                        fail(no, f"hierarchy names bone '{child}' that :bonedata does not define")
                    parent[child] = parts[0]
    if not bones:
        raise MocapFormatError(f"{path}: no :bonedata section; is this an ASF file?")
    missing = sorted(set(bones) - set(parent))
    if missing:
        raise MocapFormatError(f"{path}: bones {missing} are not placed in :hierarchy")
    skel = AsfSkeleton(name=name, length_scale=length_scale, angle_unit=angle_unit,
                       root_order=root_order, root_axis_order=root_axis, root_position=root_pos,
                       root_orientation=root_ori, bones=bones, parent=parent, source=str(path))
    if len(skel.order) != len(bones):
        raise MocapFormatError(f"{path}: :hierarchy is not a tree rooted at 'root'")
    return skel


def _parse_bonedata(body, fail) -> Dict[str, AsfBone]:
    bones, cur, in_limits = {}, None, False
    for no, text in body:
        parts = text.split()
        word = parts[0].lower()
        if word == "begin":
            cur, in_limits = {"limits": []}, False
            continue
        if cur is None:
            fail(no, f"'{text}' outside a begin/end bone block")
        if word == "end":
            for required in ("name", "direction", "length"):
                if required not in cur:
                    fail(no, f"bone block without '{required}'")
            if len(cur["limits"]) not in (0, len(cur.get("dof", ()))):
                fail(no, f"bone '{cur['name']}': {len(cur['limits'])} limits for "
                         f"{len(cur.get('dof', ()))} dofs")
            bones[cur["name"]] = AsfBone(
                name=cur["name"], id=cur.get("id", len(bones) + 1),
                direction=cur["direction"], length=cur["length"],
                axis=cur.get("axis", np.zeros(3)), axis_order=cur.get("axis_order", "XYZ"),
                dof=tuple(cur.get("dof", ())), limits=tuple(cur["limits"]))
            cur = None
            continue
        if word == "limits" or (in_limits and text.startswith("(")):
            in_limits = True
            nums = re.findall(_FLOAT, text[len("limits"):] if word == "limits" else text)
            if len(nums) != 2:
                fail(no, f"cannot read a limit pair from '{text}'")
            cur["limits"].append((float(nums[0]), float(nums[1])))
            continue
        in_limits = False
        try:
            if word == "id":
                cur["id"] = int(parts[1])
            elif word == "name":
                cur["name"] = parts[1]
            elif word == "direction":
                d = np.array([float(v) for v in parts[1:4]])
                n = np.linalg.norm(d)
                cur["direction"] = d / n if n > 0 else d
            elif word == "length":
                cur["length"] = float(parts[1])
            elif word == "axis":
                cur["axis"] = np.array([float(v) for v in parts[1:4]])
                cur["axis_order"] = parts[4].upper() if len(parts) > 4 else "XYZ"
            elif word == "dof":
                dof = tuple(p.lower() for p in parts[1:])
                unsupported = [d for d in dof if d not in ("rx", "ry", "rz")]
                if unsupported:
                    fail(no, f"dof {unsupported} not supported (only rotational rx/ry/rz)")
                cur["dof"] = dof
        except (IndexError, ValueError):
            fail(no, f"malformed bone line '{text}'")
    return bones


# ----------------------------------------------------------------------------- AMC
@dataclass
class AmcMotion:
    """Per-frame dof values: ``values[bone]`` is (N, len(dof)); the root's is (N, 6)."""
    frame_numbers: np.ndarray              # (N,) as written in the file (CMU: from 1)
    values: Dict[str, np.ndarray]
    fps: float = 120.0
    source: str = ""

    @property
    def num_frames(self) -> int:
        return len(self.frame_numbers)

    def resample(self, fps_out: float) -> "AmcMotion":
        """Linear interpolation of the dof values at ``fps_out``.

        Angles are interpolated, not positions, so bones stay exactly rigid; they are
        unwrapped first (period 360 deg) so that a 179 -> -179 step does not spin back.
        """
        lo, hi, w = resampling_grid(self.num_frames, self.fps, fps_out)
        out = {}
        for bone, v in self.values.items():
            v = np.unwrap(v, period=360.0, axis=0) if bone != "root" else np.concatenate(
                [v[:, :3], np.unwrap(v[:, 3:], period=360.0, axis=0)], axis=1)
            out[bone] = (1 - w) * v[lo] + w * v[hi]
        return AmcMotion(frame_numbers=np.arange(len(lo)), values=out, fps=float(fps_out),
                         source=self.source)


def resampling_grid(num_frames: int, fps_in: float, fps_out: float):
    """Source frames and weights for linear resampling: out = (1 - w) * x[lo] + w * x[hi].

    The output covers the clip's duration at ``fps_out`` from the first frame; ``w`` is
    (M, 1) so it broadcasts over value columns.
    """
    if fps_out <= 0:
        raise ValueError(f"fps_out must be positive, got {fps_out}")
    duration = (num_frames - 1) / fps_in
    t_out = np.arange(int(np.floor(duration * fps_out + 1e-9)) + 1) / fps_out
    pos = t_out * fps_in                                   # fractional source frame
    lo = np.minimum(np.floor(pos).astype(np.int64), num_frames - 1)
    hi = np.minimum(lo + 1, num_frames - 1)
    return lo, hi, (pos - lo)[:, None]


def read_amc(path, skeleton: AsfSkeleton, max_frames: Optional[int] = None,
             fps: float = 120.0) -> AmcMotion:
    """Parse an AMC motion file for ``skeleton``; ``max_frames`` reads only the first frames."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AMC motion file not found: {path}")
    lines = path.read_text(errors="replace").splitlines()
    degrees = skeleton.angle_unit == "deg"
    start = 0
    for start, line in enumerate(lines):   # header: comments and ':FLAGS'
        s = line.strip()
        if s.upper() == ":RADIANS":
            degrees = False
        elif s.upper() == ":DEGREES":
            degrees = True
        if s and not s.startswith("#") and not s.startswith(":"):
            break
    frames: List[int] = []
    rows: Dict[str, List[str]] = {}
    counts: Dict[str, int] = {}
    for no in range(start, len(lines)):
        s = lines[no].strip()
        if not s:
            continue
        if s.isdigit():
            if max_frames is not None and len(frames) == max_frames:
                break
            frames.append(int(s))
            continue
        name, _, rest = s.partition(" ")
        if not frames:
            raise MocapFormatError(f"{path}:{no + 1}: bone line before the first frame number")
        if name not in rows:
            if name != "root" and name not in skeleton.bones:
                raise MocapFormatError(f"{path}:{no + 1}: bone '{name}' is not in the skeleton "
                                       f"{skeleton.source or skeleton.name}")
            rows[name], counts[name] = [], 0
        if counts[name] != len(frames) - 1:
            raise MocapFormatError(f"{path}:{no + 1}: bone '{name}' missing or repeated in "
                                   f"frame {frames[-1]}")
        rows[name].append(rest)
        counts[name] += 1
    if not frames:
        raise MocapFormatError(f"{path}: no frames found; is this an AMC file?")
    n = len(frames)
    values = {}
    for name, text in rows.items():
        if counts[name] != n:
            raise MocapFormatError(f"{path}: bone '{name}' appears in {counts[name]} of {n} frames")
        width = len(skeleton.root_order) if name == "root" else len(skeleton.bones[name].dof)
        flat = np.array(" ".join(text).split(), dtype=np.float64)
        if flat.size != n * width:
            raise MocapFormatError(f"{path}: bone '{name}' should have {width} values per frame "
                                   f"(ASF dof), found {flat.size / n:.2f} on average")
        values[name] = flat.reshape(n, width)
    if "root" not in values:
        raise MocapFormatError(f"{path}: no 'root' lines")
    if not degrees and skeleton.angle_unit == "deg":
        for name, v in values.items():   # keep one unit throughout: the skeleton's
            if name == "root":
                v[:, 3:] = np.rad2deg(v[:, 3:])
            else:
                values[name] = np.rad2deg(v)
    return AmcMotion(frame_numbers=np.asarray(frames), values=values, fps=fps, source=str(path))


# ----------------------------------------------------------------------------- FK
def root_split(skeleton: AsfSkeleton, root_values: np.ndarray):
    """Root (N, 6) AMC values -> translation (N, 3) and rotation (N, 3, 3) (without C)."""
    n = len(root_values)
    trans = np.tile(skeleton.root_position, (n, 1)).astype(np.float64)
    rot_axes, rot_vals = "", []
    for i, ch in enumerate(skeleton.root_order):
        kind, axis = ch[0].upper(), "xyz".index(ch[1].lower())
        if kind == "T":
            trans[:, axis] += root_values[:, i]
        elif kind == "R":
            rot_axes += ch[1].lower()
            rot_vals.append(root_values[:, i])
    if rot_axes:
        rot = euler_to_matrix(skeleton.to_radians(np.stack(rot_vals, -1)), rot_axes)
    else:
        rot = np.broadcast_to(np.eye(3), (n, 3, 3))
    return trans, rot


def forward_kinematics(skeleton: AsfSkeleton, motion: Optional[AmcMotion] = None,
                       num_frames: int = 1) -> Dict[str, np.ndarray]:
    """Global positions (N, 3) of every bone's end (and 'root'), in ASF length units.

    A bone starts where its parent ends. Without ``motion`` all dofs are zero: the ASF rest
    pose (CMU: standing upright, arms out), ``num_frames`` copies of it.
    """
    if motion is not None:
        num_frames = motion.num_frames
    n = num_frames
    if motion is not None and "root" in motion.values:
        trans, root_rot = root_split(skeleton, motion.values["root"])
    else:
        trans, root_rot = np.tile(skeleton.root_position, (n, 1)), np.broadcast_to(np.eye(3), (n, 3, 3))
    C = euler_to_matrix(skeleton.to_radians(skeleton.root_orientation), skeleton.root_axis_order)
    glob = {"root": C @ root_rot @ C.T}
    ends = {"root": trans}
    for name in skeleton.order:
        bone, par = skeleton.bones[name], skeleton.parent[name]
        local = local_rotation(skeleton, name, motion)
        # no dof: rigidly attached to the parent
        glob[name] = glob[par] if local is None else glob[par] @ local
        ends[name] = ends[par] + glob[name] @ (bone.direction * bone.length)
    return ends


def local_rotation(skeleton: AsfSkeleton, name: str,
                   motion: Optional[AmcMotion]) -> Optional[np.ndarray]:
    """(N, 3, 3) rotation ``C · M · Cᵀ`` of a bone relative to its parent; None without dof."""
    bone = skeleton.bones[name]
    if not bone.dof or motion is None or name not in motion.values:
        return None
    C = euler_to_matrix(skeleton.to_radians(bone.axis), bone.axis_order)
    M = euler_to_matrix(skeleton.to_radians(motion.values[name]), "".join(d[1] for d in bone.dof))
    return C @ M @ C.T
