"""From a PoseCorpus to the tensors a lifting network trains on, computed once and cached.

What the original code did per sample in ``__getitem__`` (projection, normalisation,
root-relative targets, an SMPL forward pass for the mesh target and its coarse downsampling)
runs here once per dataset, vectorised and without autograd:

* one body-model forward per frame in the world frame, pooled to the two coarse levels with
  the averaging matrices (pooling commutes with the rigid camera transform because every
  pooling column sums to one, so this equals HGN's per-camera SMPL forward exactly);
* per camera: world -> camera, projection, screen normalisation, root-relative targets.

The result is cached as an .npz keyed by the source files (path, size, mtime) and every
setting that changes the arrays; a dataset then serves contiguous tensors.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from lib.data import codec
from lib.data.corpus import PoseCorpus
from lib.data.errors import DataFormatError
from lib.fileio import atomic_write
from lib.geometry.camera import project_to_pixels
from lib.geometry.skeleton import LIFTING_JOINT_SETS, SKELETONS, convert_joints
from lib.progress import progress

CACHE_VERSION = 3          # 2: stats list the excluded sequence keys; 3: samples follow images
log = logging.getLogger("pose")


@dataclass
class MeshTargets:
    """What the mesh targets need: a body model and the full-mesh -> level pooling matrices."""
    body: object                   # lib.body.smpl.BodyModel
    pool_fine: object              # (V, R_fine) averaging matrix (scipy sparse or dense)
    pool_mid: object               # (V, R_mid)
    fingerprint: str               # body model + graph levels
    shape_clamp: float = 3.0       # |beta| > clamp -> beta = 0 (HGN)
    chunk: int = 512               # frames per body-model forward


@dataclass
class LiftingSpec:
    """Everything that changes the cached arrays."""
    num_joints: int = 17
    stride: int = 1
    distort: bool = False          # project GT 2D with lens distortion
    require_smpl: bool = False     # drop frames without an SMPL fit
    exclude: tuple = ()            # (subject, action_idx, subaction_idx) keys left out
    with_mesh: bool = False

    def key_dict(self):
        d = asdict(self)
        d["exclude"] = sorted(list(map(list, self.exclude)))
        return d


def _to_joint_set(arr: np.ndarray, source: str, num_joints: int) -> np.ndarray:
    return convert_joints(arr, source, LIFTING_JOINT_SETS[num_joints])


def _keypoints_to_joint_set(kp: np.ndarray, source: str, num_joints: int,
                            corpus: PoseCorpus) -> np.ndarray:
    """Like :func:`_to_joint_set`, but a 2D file with too few joints is a user-facing error."""
    have, want = SKELETONS[source].num_joints, num_joints
    if have < want:
        raise DataFormatError(
            f"the 2D keypoints of {corpus.source or 'this dataset'} have {have} joints "
            f"({source}), but DATASET.num_joints is {want}: {want} joints cannot be made from "
            f"{have}. Set DATASET.num_joints to {have} (the GraphSH/SemGCN GT 2D file drops "
            f"Neck/Nose), or use 2D keypoints with {want} joints.")
    return _to_joint_set(kp, source, num_joints)


def build_arrays(corpus: PoseCorpus, spec: LiftingSpec,
                 mesh: Optional[MeshTargets] = None) -> dict:
    """Flatten every (sequence, camera, frame) of ``corpus`` into training arrays.

    Returns a dict of numpy arrays with M rows: ``input_2d`` (M,J,2) normalised screen
    coordinates, ``target_3d`` (M,J,3) root-relative camera-frame metres, ``root_cam``
    (M,3) metres, ``subject``/``action``/``subaction``/``camera``/``frame`` (M,) ints, and with
    meshes ``mesh_fine``/``mesh_mid`` (M,R,3) metres relative to the H36M pelvis, ``has_mesh``.
    Also a ``stats`` dict (frames kept/skipped per reason).
    """
    if spec.with_mesh and mesh is None:
        raise ValueError("mesh targets requested but no body model / graph pooling given")
    exclude = {tuple(e) for e in spec.exclude}
    parts = {k: [] for k in ("input_2d", "target_3d", "root_cam", "subject", "action",
                             "subaction", "camera", "frame", "mesh_fine", "mesh_mid",
                             "has_mesh")}
    stats = {"sequences": 0, "frames": 0, "excluded_sequences": 0, "excluded_frames": 0,
             "no_smpl_frames": 0, "dropped_no_smpl": 0, "no_mesh_samples": 0, "samples": 0,
             "no_image_samples": 0, "excluded_keys": []}
    for seq in progress(corpus.sequences, desc="building the dataset cache", unit="seq"):
        if seq.key in exclude:
            stats["excluded_sequences"] += 1
            stats["excluded_frames"] += seq.num_frames
            stats["excluded_keys"].append(list(seq.key))
            continue
        idx = np.arange(0, seq.num_frames, spec.stride)
        has_mesh = np.zeros(len(idx), bool)
        if seq.smpl is not None:
            has_mesh = seq.smpl.valid[idx].copy()
        stats["no_smpl_frames"] += int((~has_mesh).sum()) if seq.smpl is not None else 0
        if spec.require_smpl:
            if seq.smpl is None:
                raise DataFormatError(
                    f"sequence S{seq.subject} act {seq.action_idx} sub {seq.subaction_idx} has no "
                    f"SMPL parameters, but DATASET.require_smpl is true (frames without a fit "
                    f"are dropped). Set DATASET.require_smpl false to train on joints only.")
            stats["dropped_no_smpl"] += int((~has_mesh).sum())
            idx = idx[has_mesh]
            has_mesh = has_mesh[has_mesh]
        if len(idx) == 0:
            continue
        stats["sequences"] += 1
        stats["frames"] += len(idx)
        joints_w = _to_joint_set(seq.joints_world[idx].astype(np.float64), seq.joint_set,
                                 spec.num_joints)
        pelvis_w = seq.joints_world[idx, 0].astype(np.float64)   # index 0 is the pelvis in all sets
        fine_w = mid_w = None
        if spec.with_mesh:
            fine_w, mid_w = _world_coarse_meshes(seq, idx, has_mesh, mesh)
        cams = corpus.cameras[seq.subject]
        for cam_idx in sorted(cams):
            cam = cams[cam_idx]
            # samples follow the images: only the frames this camera has an image of
            has_image = seq.frames_of_camera(cam_idx)[idx]
            stats["no_image_samples"] += int((~has_image).sum())
            if not has_image.any():
                continue
            if not has_image.all():
                cidx, joints_c, pelvis_c = idx[has_image], joints_w[has_image], pelvis_w[has_image]
                mesh_c, fine_c, mid_c = has_mesh[has_image], None, None
                if spec.with_mesh:
                    fine_c, mid_c = fine_w[has_image], mid_w[has_image]
            else:
                cidx, joints_c, pelvis_c, mesh_c = idx, joints_w, pelvis_w, has_mesh
                fine_c, mid_c = fine_w, mid_w
            x_cam = cam.world_to_camera(joints_c)                        # (n, J, 3) mm
            if cam_idx in seq.keypoints_2d:
                kp = seq.keypoints_2d[cam_idx][cidx].astype(np.float64)
                kp = _keypoints_to_joint_set(kp, seq.keypoints_2d_joint_set or seq.joint_set,
                                             spec.num_joints, corpus)
            else:
                kp = project_to_pixels(x_cam, cam.f, cam.c,
                                       cam.k if spec.distort else None,
                                       cam.p if spec.distort else None)
            parts["input_2d"].append(codec.encode_input(kp, cam.width, cam.height))
            root = cam.world_to_camera(pelvis_c)                         # (n, 3) mm
            parts["target_3d"].append(codec.encode_target(x_cam, root))
            parts["root_cam"].append(codec.encode_root(root))
            n = len(cidx)
            parts["subject"].append(np.full(n, seq.subject, np.int16))
            parts["action"].append(np.full(n, seq.action_idx, np.int16))
            parts["subaction"].append(np.full(n, seq.subaction_idx, np.int16))
            parts["camera"].append(np.full(n, cam_idx, np.int16))
            parts["frame"].append(seq.frame_idx[cidx].astype(np.int32))
            parts["has_mesh"].append(mesh_c)
            if spec.with_mesh:
                for name, world in (("mesh_fine", fine_c), ("mesh_mid", mid_c)):
                    parts[name].append(codec.encode_target(cam.world_to_camera(world), root))
    if not parts["input_2d"]:
        raise DataFormatError(f"no samples left in {corpus.source or 'the dataset'} after selection "
                         f"(subjects {corpus.subjects}, stride {spec.stride}); check "
                         f"DATASET.*_subjects and the data files")
    out = {k: np.concatenate(v) for k, v in parts.items() if v}
    stats["samples"] = len(out["input_2d"])
    stats["no_mesh_samples"] = int((~out["has_mesh"]).sum())
    if stats["no_image_samples"]:
        log.info("%s: %d (frame, camera) pairs skipped: the camera has no image of that frame "
                 "(samples follow the images, as HGN's loader enumerates them)",
                 corpus.source or "dataset", stats["no_image_samples"])
    out["stats"] = stats
    return out


def _world_coarse_meshes(seq, idx, has_mesh, mesh: MeshTargets):
    """World-frame (mm) coarse meshes of the frames ``idx``; zeros where there is no fit."""
    n = len(idx)
    fine = np.zeros((n, _cols(mesh.pool_fine), 3))
    mid = np.zeros((n, _cols(mesh.pool_mid), 3))
    if seq.smpl is None or not has_mesh.any():
        return fine, mid
    sel = np.nonzero(has_mesh)[0]
    pose = seq.smpl.pose[idx[sel]].astype(np.float32)
    shape = seq.smpl.shape[idx[sel]].astype(np.float32).copy()
    shape[np.abs(shape).max(1) > mesh.shape_clamp] = 0.0
    trans = seq.smpl.trans[idx[sel]].astype(np.float32)
    pf = _dense_t(mesh.pool_fine)
    pm = _dense_t(mesh.pool_mid)
    for start in range(0, len(sel), mesh.chunk):
        s = slice(start, start + mesh.chunk)
        verts, _ = mesh.body.forward(torch.from_numpy(pose[s]), torch.from_numpy(shape[s]),
                                     torch.from_numpy(trans[s]))
        verts = torch.as_tensor(verts, dtype=torch.float64) * 1000.0   # metres -> mm
        fine[sel[s]] = torch.matmul(pf, verts).numpy()
        mid[sel[s]] = torch.matmul(pm, verts).numpy()
    return fine, mid


def _cols(m):
    return m.shape[1]


def _dense_t(m) -> torch.Tensor:
    """(R, V) float64 tensor of a (V, R) pooling matrix."""
    arr = m.toarray() if hasattr(m, "toarray") else np.asarray(m)
    return torch.from_numpy(np.ascontiguousarray(arr.T, dtype=np.float64))


# ----------------------------------------------------------------------------- cache
def file_signature(paths) -> list:
    sig = []
    for p in sorted(map(str, paths)):
        st = Path(p).stat()
        sig.append([p, st.st_size, st.st_mtime_ns])
    return sig


def cache_key(sources, spec: LiftingSpec, extra: dict) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "sources": file_signature(sources),
                       "spec": spec.key_dict(), "extra": extra}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def cached_arrays(cache_dir, name, sources, spec, build, extra=None) -> dict:
    """Load the arrays for (sources, spec) from cache_dir, or ``build()`` and store them."""
    key = cache_key(sources, spec, extra or {})
    path = Path(cache_dir) / f"{name}_{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != "stats_json"}
                arrays["stats"] = json.loads(str(z["stats_json"]))
            arrays["stats"]["cache"] = f"hit {path}"
            return arrays
        except Exception as exc:  # a corrupt cache is rebuilt, not fatal
            log.warning("cache file %s unreadable (%s); rebuilding", path, exc)
    arrays = build()
    atomic_write(path, lambda tmp: np.savez(   # per-process temp name: ranks may build at once
        tmp, stats_json=json.dumps(arrays["stats"]),
        **{k: v for k, v in arrays.items() if k != "stats"}))
    arrays["stats"]["cache"] = f"built {path}"
    return arrays


# ----------------------------------------------------------------------------- serving
class LiftingDataset(torch.utils.data.Dataset):
    """Contiguous tensors; batches are slices, so the loader costs nothing per sample."""

    FIELDS = ("input_2d", "target_3d", "root_cam", "subject", "action", "subaction", "camera",
              "frame", "has_mesh", "mesh_fine", "mesh_mid")

    def __init__(self, arrays: dict, name: str = "", info=None, cameras=None):
        self.name = name
        self.info = info               # lib.data.formats.DatasetInfo of the source, if known
        self.cameras = cameras         # {subject: {camera: Camera}} of the source, if known
        self.stats = dict(arrays.get("stats", {}))
        self.tensors = {k: torch.from_numpy(np.ascontiguousarray(arrays[k]))
                        for k in self.FIELDS if k in arrays}
        n = {len(v) for v in self.tensors.values()}
        if len(n) != 1:
            raise ValueError(f"inconsistent array lengths in dataset {name}: {n}")

    def __len__(self):
        return len(self.tensors["input_2d"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.tensors.items()}

    @property
    def has_mesh(self) -> bool:
        return "mesh_fine" in self.tensors and bool(self.tensors["has_mesh"].any())

    @property
    def num_joints(self) -> int:
        return self.tensors["input_2d"].shape[1]


class BatchLoader:
    """Shuffled (or ordered) batches of a LiftingDataset, sharded for distributed runs.

    The permutation of epoch e is drawn from a generator seeded with (seed, e), so a resumed
    run sees the same batches as an uninterrupted one, and every rank agrees on it.
    """

    def __init__(self, dataset: LiftingDataset, batch_size: int, shuffle: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 max_batches: int = 0):
        self.ds = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world = world_size
        self.drop_last = drop_last
        self.max_batches = max_batches
        self.epoch = 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.ds)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world > 1:
            per_rank = -(-n // self.world)
            pad = per_rank * self.world - n
            if pad:
                order = torch.cat([order, order[:pad]])
            order = order[self.rank::self.world]
        return order

    def __len__(self):
        n = len(self._indices())
        b = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return min(b, self.max_batches) if self.max_batches else b

    def __iter__(self):
        order = self._indices()
        contiguous = not self.shuffle and self.world == 1
        for b in range(len(self)):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            if contiguous:
                yield {k: v[sl] for k, v in self.ds.tensors.items()}
            else:
                idx = order[sl]
                yield {k: v.index_select(0, idx) for k, v in self.ds.tensors.items()}
