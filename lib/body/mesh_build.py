"""Box-modelled human surface: a closed genus-0 quad cage, Catmull-Clark subdivision, triangulation.

Why box modelling: every operation (extruding a patch of faces) keeps the surface closed,
manifold and of genus 0, so the stand-in body mesh has the same topology as SMPL's without
any repair step. Limbs are separate tubes, so there is no webbing between arms and torso or
between the legs. Each cage face carries a body-part label that survives subdivision; the
skinning weights use it to keep one leg from borrowing the other leg's bones.

Coordinates follow SMPL: metres, y up, the body faces +z, the subject's left is +x.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PARTS = ("torso", "head", "arm_l", "arm_r", "leg_l", "leg_r")
PART_ID = {name: i for i, name in enumerate(PARTS)}


@dataclass
class TriMesh:
    vertices: np.ndarray   # (V, 3) float64
    faces: np.ndarray      # (F, 3) int64, counter-clockwise seen from outside
    face_part: np.ndarray  # (F,) int64 index into PARTS


class QuadCage:
    """A growing all-quad control mesh with per-face part labels."""

    def __init__(self):
        self.verts: list[np.ndarray] = []
        self.faces: dict[int, tuple] = {}
        self.part: dict[int, int] = {}
        self._next_face = 0

    def add_vertex(self, p) -> int:
        self.verts.append(np.asarray(p, dtype=np.float64))
        return len(self.verts) - 1

    def add_face(self, quad, part: str) -> int:
        fid = self._next_face
        self._next_face += 1
        self.faces[fid] = tuple(int(i) for i in quad)
        self.part[fid] = PART_ID[part]
        return fid

    def boundary_loop(self, region) -> list:
        """Ordered boundary vertices of a disc-shaped face region (orientation of its faces)."""
        directed = {}
        for fid in region:
            q = self.faces[fid]
            for k in range(4):
                directed[(q[k], q[(k + 1) % 4])] = True
        nxt = {a: b for (a, b) in directed if (b, a) not in directed}
        start = min(nxt)
        loop = [start]
        while nxt[loop[-1]] != start:
            loop.append(nxt[loop[-1]])
            if len(loop) > len(nxt):
                raise RuntimeError("region boundary is not a single loop")
        if len(loop) != len(nxt):
            raise RuntimeError("region boundary is not a single loop")
        return loop

    def extrude(self, region, positions: dict, part: str) -> list:
        """Lift a face region along new ring positions; returns the new (cap) region.

        ``positions`` maps each boundary vertex of the region to the position of its copy.
        Side quads (a, b, b', a') follow each boundary edge a->b, which keeps the orientation.
        """
        loop = self.boundary_loop(region)
        region_verts = {v for fid in region for v in self.faces[fid]}
        if region_verts != set(loop):
            raise RuntimeError("extruded regions must have no interior vertices")
        copy = {v: self.add_vertex(positions[v]) for v in loop}
        cap = []
        for fid in region:
            q = self.faces.pop(fid)
            self.part.pop(fid)
            cap.append(self.add_face([copy[v] for v in q], part))
        for k, a in enumerate(loop):
            b = loop[(k + 1) % len(loop)]
            self.add_face([a, b, copy[b], copy[a]], part)
        return cap

    def arrays(self):
        fids = sorted(self.faces)
        return (np.array(self.verts), np.array([self.faces[f] for f in fids], dtype=np.int64),
                np.array([self.part[f] for f in fids], dtype=np.int64))


# ----------------------------------------------------------------------------- subdivision
def catmull_clark(verts: np.ndarray, quads: np.ndarray, part: np.ndarray):
    """One Catmull-Clark step on a closed all-quad mesh (vectorised)."""
    nv, nf = len(verts), len(quads)
    face_pts = verts[quads].mean(axis=1)
    half = np.stack([quads, np.roll(quads, -1, axis=1)], axis=-1).reshape(-1, 2)
    key = np.sort(half, axis=1)
    edges, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    ne = len(edges)
    counts = np.bincount(inverse, minlength=ne)
    if not np.all(counts == 2):
        raise RuntimeError("mesh is not closed and manifold (an edge without exactly two faces)")
    face_of_half = np.repeat(np.arange(nf), 4)
    edge_face_sum = np.zeros((ne, 3))
    np.add.at(edge_face_sum, inverse, face_pts[face_of_half])
    edge_mid = verts[edges].mean(axis=1)
    edge_pts = (verts[edges].sum(axis=1) + edge_face_sum) / 4.0

    valence = np.bincount(edges.ravel(), minlength=nv).astype(np.float64)
    q_sum = np.zeros((nv, 3))
    np.add.at(q_sum, quads.ravel(), np.repeat(face_pts, 4, axis=0))
    face_count = np.bincount(quads.ravel(), minlength=nv).astype(np.float64)
    r_sum = np.zeros((nv, 3))
    np.add.at(r_sum, edges[:, 0], edge_mid)
    np.add.at(r_sum, edges[:, 1], edge_mid)
    n = valence[:, None]
    new_v = (q_sum / face_count[:, None] + 2 * r_sum / n + (n - 3) * verts) / n

    # new vertex ids: old vertices, then edge points, then face points
    e_id = nv + inverse.reshape(nf, 4)          # edge k of face = (q[k], q[k+1])
    f_id = nv + ne + np.arange(nf)
    new_quads = []
    for k in range(4):
        new_quads.append(np.stack([quads[:, k], e_id[:, k], f_id, e_id[:, (k - 1) % 4]], axis=1))
    new_quads = np.stack(new_quads, axis=1).reshape(-1, 4)
    new_part = np.repeat(part, 4)
    return np.concatenate([new_v, edge_pts, face_pts]), new_quads, new_part


def triangulate_with_centres(verts, quads, part):
    """Split each quad into four triangles around its centroid (doubles the vertex count)."""
    nv = len(verts)
    centres = verts[quads].mean(axis=1)
    c_id = nv + np.arange(len(quads))
    tris = [np.stack([quads[:, k], quads[:, (k + 1) % 4], c_id], axis=1) for k in range(4)]
    tris = np.stack(tris, axis=1).reshape(-1, 3)
    return np.concatenate([verts, centres]), tris, np.repeat(part, 4)


# ----------------------------------------------------------------------------- checks
def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume (positive when the faces are oriented outwards)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


# ----------------------------------------------------------------------------- the body cage
def _uniform_angles(offsets: np.ndarray) -> np.ndarray:
    """Angles of ring points, respaced uniformly in their cyclic order (even vertex density)."""
    ang = np.arctan2(offsets[:, 1], offsets[:, 0])
    order = np.argsort(ang)
    n = len(ang)
    base = 2 * np.pi * np.arange(n) / n
    delta = ang[order] - base
    offset = np.arctan2(np.sin(delta).mean(), np.cos(delta).mean())
    out = np.empty(n)
    out[order] = offset + base
    return out


def _ring_positions(cage: QuadCage, loop, axes, centre, radii, ref_centre=None):
    """Place the copies of a boundary loop on an ellipse around ``centre``.

    ``axes`` are the two world axes spanning the cross-section; the angular position of each
    vertex is read from its current position (normalised by the loop's extent) and respaced.
    """
    cur = np.array([cage.verts[v] for v in loop])
    ref = cur.mean(axis=0) if ref_centre is None else np.asarray(ref_centre)
    off = np.stack([cur[:, axes[0]] - ref[axes[0]], cur[:, axes[1]] - ref[axes[1]]], axis=1)
    off /= np.maximum(np.abs(off).max(axis=0), 1e-9)
    ang = _uniform_angles(off)
    pos = {}
    for v, a in zip(loop, ang):
        p = np.array(centre, dtype=np.float64)
        p[axes[0]] += RADIAL_GAIN * radii[0] * np.cos(a)
        p[axes[1]] += RADIAL_GAIN * radii[1] * np.sin(a)
        pos[v] = p
    return pos


def _extrude_chain(cage, region, part, axes, rings):
    """Successive extrusions; ``rings`` is a list of (centre, (r0, r1))."""
    for centre, radii in rings:
        loop = cage.boundary_loop(region)
        region = cage.extrude(region, _ring_positions(cage, loop, axes, centre, radii), part)
    return region


# Torso levels: (y, half width, front z, back z); the first is the crotch, the last the shoulders.
TORSO_LEVELS = (
    (-0.31, 0.160, 0.090, -0.100),
    (-0.20, 0.175, 0.085, -0.110),
    (-0.07, 0.150, 0.090, -0.080),
    (0.06, 0.158, 0.105, -0.085),
    (0.17, 0.168, 0.100, -0.090),
    (0.27, 0.165, 0.060, -0.075),
)
# Left leg rings below the crotch: (y, centre x, centre z, radius x, radius z)
LEG_RINGS = (
    (-0.46, 0.093, 0.012, 0.074, 0.080),
    (-0.60, 0.100, 0.020, 0.060, 0.064),
    (-0.72, 0.104, 0.030, 0.050, 0.054),
    (-0.86, 0.100, 0.005, 0.052, 0.060),
    (-1.10, 0.089, -0.015, 0.034, 0.040),
    (-1.19, 0.090, -0.010, 0.042, 0.058),
)
# Left foot rings forward of the ankle block: (z, centre x, centre y, half width x, half height y)
FOOT_RINGS = (
    (0.10, 0.104, -1.160, 0.046, 0.034),
    (0.17, 0.112, -1.175, 0.040, 0.020),
)
# Left arm rings along +x: (x, centre y, centre z, radius y, radius z)
ARM_RINGS = (
    (0.225, 0.222, -0.005, 0.058, 0.060),
    (0.440, 0.208, -0.012, 0.040, 0.042),
    (0.570, 0.210, -0.013, 0.036, 0.041),
    (0.700, 0.214, -0.013, 0.024, 0.033),
    (0.790, 0.210, -0.018, 0.017, 0.045),
    (0.870, 0.206, -0.020, 0.011, 0.034),
)
# Neck and head rings: (y, centre z, radius x, radius z)
HEAD_RINGS = (
    (0.335, 0.000, 0.054, 0.056),
    (0.400, 0.020, 0.064, 0.080),
    (0.465, 0.018, 0.078, 0.096),
    (0.548, 0.006, 0.058, 0.070),
)
RADIAL_GAIN = 1.08        # cage rings sit outside the subdivided surface, which shrinks inwards
CROTCH_HALF_GAP = 0.010   # x of the inner thigh points at the crotch
THIGH_TOP = (0.088, -0.005, 0.078, 0.092)   # centre x, centre z, radius x, radius z
NECK_BASE_HALF_WIDTH = 0.055


def build_body_cage() -> QuadCage:
    """The quad control cage of the body (about 215 quads)."""
    cage = QuadCage()
    xs_layout = (-1.0, -0.3, 0.3, 1.0)
    zs_layout = (-1.0, 0.0, 1.0)
    grid = {}
    n_levels = len(TORSO_LEVELS)
    # the ring cells in cyclic order sit at 36 degree steps starting at (x=+1, z=0)
    order_angles = {}
    cyc = [(3, 1), (3, 2), (2, 2), (1, 2), (0, 2), (0, 1), (0, 0), (1, 0), (2, 0), (3, 0)]
    for k, cell in enumerate(cyc):
        order_angles[cell] = 2 * np.pi * k / 10
    for li, (y, half_w, zf, zb) in enumerate(TORSO_LEVELS):
        full = li in (0, n_levels - 1)
        for ix in range(4):
            for iz in range(3):
                cell = (ix, iz)
                if cell in order_angles:
                    a = order_angles[cell]
                    z = RADIAL_GAIN * (zf if np.sin(a) >= 0 else -zb) * np.sin(a)
                    p = (RADIAL_GAIN * half_w * np.cos(a), y, z)
                elif full:
                    p = (np.sign(xs_layout[ix]) * 0.05, y, 0.0)
                else:
                    continue
                grid[li, ix, iz] = cage.add_vertex(p)
    # side quads between levels (orientation fixed globally at the end if needed)
    for li in range(n_levels - 1):
        for k in range(10):
            a, b = cyc[k], cyc[(k + 1) % 10]
            cage.add_face([grid[li, a[0], a[1]], grid[li, b[0], b[1]],
                           grid[li + 1, b[0], b[1]], grid[li + 1, a[0], a[1]]], "torso")
    caps = {}
    for li, flip in ((0, False), (n_levels - 1, True)):
        for ix in range(3):
            for iz in range(2):
                q = [grid[li, ix, iz], grid[li, ix + 1, iz], grid[li, ix + 1, iz + 1],
                     grid[li, ix, iz + 1]]
                if not flip:
                    q = q[::-1]
                caps[li, ix, iz] = cage.add_face(q, "torso")
    top = n_levels - 1

    # crotch level: the two column loops become the tops of the thighs
    cx, cz, rx, rz = THIGH_TOP
    y0 = TORSO_LEVELS[0][0]
    for side, cols in ((1, (2, 3)), (-1, (0, 1))):
        ids = {grid[0, ix, iz] for ix in cols for iz in range(3)}
        region = [caps[0, cols[0], 0], caps[0, cols[0], 1]]
        loop = cage.boundary_loop(region)
        assert set(loop) == ids
        centre = (side * cx, y0, cz)
        pos = _ring_positions(cage, loop, (0, 2), centre, (rx, rz))
        for v, p in pos.items():
            cage.verts[v] = p
    # the inner thigh points sit at the crotch gap
    for side, ix in ((1, 2), (-1, 1)):
        for iz in range(3):
            cage.verts[grid[0, ix, iz]][0] = side * max(CROTCH_HALF_GAP,
                                                         abs(cage.verts[grid[0, ix, iz]][0]))
    # neck base: the middle top cells narrow to the neck width
    for ix in (1, 2):
        for iz in range(3):
            cage.verts[grid[top, ix, iz]][0] = np.sign(xs_layout[ix]) * NECK_BASE_HALF_WIDTH

    # legs
    for side, name, col in ((1, "leg_l", 2), (-1, "leg_r", 0)):
        region = [caps[0, col, 0], caps[0, col, 1]]
        rings = [((side * x, y, z), (rx_, rz_)) for (y, x, z, rx_, rz_) in LEG_RINGS]
        region = _extrude_chain(cage, region, name, (0, 2), rings)
        # the foot grows forward from the front side quad of the last (ankle-to-sole) segment
        verts, _, _ = cage.arrays()
        front = None
        best = -np.inf
        for fid, q in cage.faces.items():
            if cage.part[fid] != PART_ID[name]:
                continue
            pts = np.array([cage.verts[v] for v in q])
            if pts[:, 1].max() > LEG_RINGS[-2][0] + 1e-6:
                continue
            if pts[:, 2].mean() > best:
                best, front = pts[:, 2].mean(), fid
        rings = [((side * x, y, z), (hx, hy)) for (z, x, y, hx, hy) in FOOT_RINGS]
        _extrude_chain(cage, [front], name, (0, 1), rings)

    # arms from the two side quads of the top torso segment
    for side, name in ((1, "arm_l"), (-1, "arm_r")):
        region = []
        for fid, q in cage.faces.items():
            pts = np.array([cage.verts[v] for v in q])
            if (cage.part[fid] == PART_ID["torso"] and np.all(side * pts[:, 0] > 0.12)
                    and pts[:, 1].min() > TORSO_LEVELS[-2][0] - 1e-6
                    and np.ptp(pts[:, 1]) > 0.05):
                region.append(fid)
        if len(region) != 2:
            raise RuntimeError(f"expected two shoulder quads, found {len(region)}")
        rings = [((side * x, y, z), (ry, rz_)) for (x, y, z, ry, rz_) in ARM_RINGS]
        _extrude_chain(cage, region, name, (1, 2), rings)

    # neck and head from the middle column of the top cap
    region = [caps[top, 1, 0], caps[top, 1, 1]]
    rings = [((0.0, y, z), (rx_, rz_)) for (y, z, rx_, rz_) in HEAD_RINGS]
    _extrude_chain(cage, region, "head", (0, 2), rings)
    return cage


def build_body_mesh(levels: int = 2) -> TriMesh:
    """Subdivide the cage ``levels`` times, then split quads into triangles around centroids."""
    verts, quads, part = build_body_cage().arrays()
    for _ in range(levels):
        verts, quads, part = catmull_clark(verts, quads, part)
    verts, tris, part = triangulate_with_centres(verts, quads, part)
    if signed_volume(verts, tris) < 0:
        tris = tris[:, ::-1].copy()
    return TriMesh(vertices=verts, faces=tris, face_part=part)
