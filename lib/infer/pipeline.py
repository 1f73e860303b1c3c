"""2D keypoints in a detector's layout -> 3D poses from a trained lifting model.

Steps: map to H36M-17 (:mod:`lib.infer.layouts`), fill low-confidence joints from the same
person's neighbouring frames, skip (and count) frames with too few joints, normalise with the
image size through the lifting codec, run the model in batches, decode to millimetres.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lib.data import codec
from lib.data.lifting import LiftingDataset
from lib.fileio import atomic_write, atomic_write_text
from lib.geometry.skeleton import (H36M17, LIFTING_JOINT_SETS, convert_joints,
                                   skeleton_for_joints)
from lib.infer.layouts import LAYOUTS, to_h36m17
from lib.infer.readers import KeypointInputError, KeypointTrack

log = logging.getLogger("pose")


@dataclass
class PreparedInput:
    xy: np.ndarray               # (N, 17, 2) pixels, gaps filled
    scores: np.ndarray           # (N, 17) H36M-17 confidences before filling
    valid: np.ndarray            # (N,) bool: enough joints to lift
    filled_per_joint: dict = field(default_factory=dict)
    skipped: int = 0


def fill_gaps(xy: np.ndarray, missing: np.ndarray, frame_ids: np.ndarray,
              person_ids: np.ndarray) -> tuple:
    """Linear interpolation over time, per person and joint, of the ``missing`` entries.

    Ends of a track take the nearest observed value. A joint never observed in a track stays
    missing. Returns (filled xy, still-missing mask).
    """
    out, still = xy.copy(), missing.copy()
    if not missing.any():
        return out, still
    for person in np.unique(person_ids):
        rows = np.nonzero(person_ids == person)[0]
        rows = rows[np.argsort(frame_ids[rows], kind="stable")]
        t = frame_ids[rows].astype(np.float64)
        for j in range(xy.shape[1]):
            gap = missing[rows, j]
            if not gap.any() or gap.all():
                continue
            seen = ~gap
            for c in range(2):
                out[rows[gap], j, c] = np.interp(t[gap], t[seen], xy[rows[seen], j, c])
            still[rows[gap], j] = False
    return out, still


def prepare(track: KeypointTrack, min_score: float = 0.3, min_joints: int = 12
            ) -> PreparedInput:
    """Map to H36M-17, fill gaps; a row with fewer than ``min_joints`` confident joints, or
    with a joint that no frame of its track observed, is not lifted (``valid`` False)."""
    xy, conf = to_h36m17(track.xy, track.scores, LAYOUTS[track.layout])
    missing = conf < min_score
    enough = (~missing).sum(1) >= min_joints
    filled, still = fill_gaps(xy, missing & enough[:, None], track.frame_ids,
                              np.where(enough, track.person_ids, -1))
    valid = enough & ~still.any(1)
    counts = (missing & valid[:, None]).sum(0)
    filled_per_joint = {n: int(c) for n, c in zip(H36M17.joint_names, counts) if c}
    return PreparedInput(filled, conf, valid, filled_per_joint, int((~valid).sum()))


def to_model_joints(arr: np.ndarray, num_joints: int) -> np.ndarray:
    """(..., 17, C) H36M-17 values -> the joint set of a model with ``num_joints`` joints."""
    return convert_joints(arr, H36M17.name, LIFTING_JOINT_SETS[num_joints])


MESH_HEADS = ("mesh_fine", "mesh_mid")      # the coarse-mesh outputs of a mesh model (HGN)


def lift(model, prepared: PreparedInput, image_size, num_joints: int, device,
         batch_size: int = 1024, progress=None, flip_test: bool = False) -> tuple:
    """(poses, meshes): (N, J, 3) float32 mm root-relative camera-axes poses, NaN rows where
    not valid; and for a mesh model {head: (N, R, 3) float32 mm} coarse meshes in the same
    frame (shifted with the pose's root joint), else {}.

    ``image_size`` is (width, height) or one per row, (N, 2).
    """
    from lib.engine.evaluate import predict
    n = len(prepared.xy)
    sizes = np.broadcast_to(np.asarray(image_size, np.float64), (n, 2))
    x = np.empty(prepared.xy.shape, np.float32)
    for w, h in np.unique(sizes, axis=0):
        rows = (sizes[:, 0] == w) & (sizes[:, 1] == h)
        x[rows] = codec.encode_input(prepared.xy[rows], w, h)
    x = to_model_joints(x, num_joints)
    poses = np.full((n, num_joints, 3), np.nan, np.float32)
    meshes = {}
    keep = np.nonzero(prepared.valid)[0]
    if len(keep):
        ds = LiftingDataset({"input_2d": np.ascontiguousarray(x[keep])}, name="input")
        pred = predict(model, ds, device, batch_size=batch_size, progress=progress,
                       flip_test=flip_test)
        poses[keep] = codec.decode_pose(pred["pose"]).numpy().astype(np.float32)
        root_mm = pred["pose"][:, codec.ROOT_JOINT:codec.ROOT_JOINT + 1].double().numpy() \
            * codec.MM_PER_M
        for head in MESH_HEADS:
            if head in pred:
                mesh = np.full((n,) + tuple(pred[head].shape[1:]), np.nan, np.float32)
                mesh[keep] = pred[head].double().numpy() * codec.MM_PER_M - root_mm
                meshes[head] = mesh
    return poses, meshes


def row_image_sizes(track: KeypointTrack, image_size) -> np.ndarray:
    """(N, 2) width and height per row: the dataset's cameras, or one size for the input."""
    if track.image_sizes is not None:
        if image_size:
            raise KeypointInputError(
                f"{track.source}: the dataset's cameras give each row's image size, so "
                f"--image-size is not used here. Drop --image-size.")
        return np.asarray(track.image_sizes, np.float64)
    return np.tile(np.array(check_image_size(track, image_size)), (len(track.xy), 1))


def check_image_size(track: KeypointTrack, image_size) -> tuple:
    size = tuple(image_size) if image_size else track.image_size
    if not size:
        raise KeypointInputError(
            f"{track.source}: the file does not say the image size, and normalisation needs it. "
            f"Pass --image-size WIDTH HEIGHT (pixels of the frames the keypoints come from).")
    if len(size) != 2 or min(size) <= 0:
        raise KeypointInputError(f"image size {size} is not positive WIDTH HEIGHT; pass "
                                 f"--image-size with two positive numbers of pixels")
    return float(size[0]), float(size[1])


def write_outputs(out_dir: Path, track: KeypointTrack, prepared: PreparedInput,
                  poses: np.ndarray, num_joints: int) -> list:
    """poses_3d.npz and poses_3d.json, each written to a temporary name and renamed."""
    names = np.array(skeleton_for_joints(num_joints).joint_names)
    scores = to_model_joints(prepared.scores[..., None], num_joints)[..., 0]
    content = {"poses_3d": poses, "joint_names": names, "frame_ids": track.frame_ids,
               "person_ids": track.person_ids, "scores_2d": scores.astype(np.float32),
               "valid": prepared.valid, **track.extras}
    out_dir.mkdir(parents=True, exist_ok=True)
    npz, js = out_dir / "poses_3d.npz", out_dir / "poses_3d.json"
    atomic_write(npz, lambda tmp: np.savez(tmp, **content))
    doc = {"units": "mm, root-relative, camera axes (x right, y down, z forward)",
           "joint_names": names.tolist(), "frame_ids": track.frame_ids.tolist(),
           "person_ids": track.person_ids.tolist(), "valid": prepared.valid.tolist(),
           "scores_2d": np.round(content["scores_2d"], 4).tolist(),
           "poses_3d": [None if not v else np.round(p, 2).tolist()
                        for p, v in zip(poses, prepared.valid)]}
    for key, column in track.extras.items():     # a dataset input's GT poses and sample keys
        column = np.asarray(column)
        doc[key] = (np.round(column, 2) if column.dtype.kind == "f" else column).tolist()
    atomic_write_text(js, json.dumps(doc))
    return [npz, js]
