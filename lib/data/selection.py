"""Frame stride and sequence exclusion, with every skipped frame accounted for in the log.

Readers return full sequences; the dataset layer decides what to keep. This module does the
two cuts that both published pipelines make (HGN: every 5th training frame, every 50th test
frame, minus the three corrupted S9 sequences) and reports the counts, so that nothing is
dropped silently. Frames without an SMPL fit are counted but kept: whether to drop them is
the dataset's choice (HGN needs the mesh target, GraphSH does not).
"""
from __future__ import annotations

import logging
from typing import Iterable, Optional, Tuple

import numpy as np

from lib.data.corpus import PoseCorpus, Sequence, SmplParams

LOG = logging.getLogger("pose.data.selection")


def _take_frames(seq: Sequence, keep: np.ndarray) -> Sequence:
    """The sub-sequence at the boolean mask / index array ``keep`` (all per-frame fields)."""
    smpl = None
    if seq.smpl is not None:
        smpl = SmplParams(pose=seq.smpl.pose[keep], shape=seq.smpl.shape[keep],
                          trans=seq.smpl.trans[keep], valid=seq.smpl.valid[keep])
    return Sequence(subject=seq.subject, action_idx=seq.action_idx,
                    subaction_idx=seq.subaction_idx, joints_world=seq.joints_world[keep],
                    joint_set=seq.joint_set, frame_idx=seq.frame_idx[keep],
                    keypoints_2d={cam: kp[keep] for cam, kp in seq.keypoints_2d.items()},
                    keypoints_2d_joint_set=seq.keypoints_2d_joint_set, smpl=smpl,
                    camera_frames=None if seq.camera_frames is None else
                    {cam: m[keep] for cam, m in seq.camera_frames.items()})


def subsample(corpus: PoseCorpus, stride: int = 1, exclude: Iterable = (),
              log: Optional[logging.Logger] = None) -> Tuple[PoseCorpus, dict]:
    """Keep frames whose original index is a multiple of ``stride``, minus excluded sequences.

    The stride applies to ``frame_idx`` (the original frame number), not to the position in the
    array, as HGN does (``frame_idx % sampling_ratio == 0``): a file that already holds every
    5th frame, sub-sampled with stride 50, keeps every 50th original frame.

    ``exclude`` holds (subject, action_idx, subaction_idx) keys, e.g.
    ``lib.geometry.skeleton.CORRUPTED_SEQUENCES``.

    Returns the new corpus and a stats dict: frames_in, frames_kept, skipped_excluded,
    skipped_stride, kept_without_smpl (kept frames with no SMPL fit, not dropped),
    sequences_in, sequences_kept, sequences_excluded (list of keys actually excluded).
    """
    if int(stride) != stride or stride < 1:
        raise ValueError(f"frame stride must be a positive integer, got {stride!r}")
    stride = int(stride)
    log = log or LOG
    exclude = {tuple(int(v) for v in key) for key in exclude}

    stats = {"frames_in": 0, "frames_kept": 0, "skipped_excluded": 0, "skipped_stride": 0,
             "kept_without_smpl": 0, "sequences_in": len(corpus.sequences),
             "sequences_kept": 0, "sequences_excluded": []}
    kept = []
    for seq in corpus.sequences:
        stats["frames_in"] += seq.num_frames
        if seq.key in exclude:
            stats["skipped_excluded"] += seq.num_frames
            stats["sequences_excluded"].append(seq.key)
            continue
        mask = np.asarray(seq.frame_idx) % stride == 0
        n_keep = int(mask.sum())
        stats["skipped_stride"] += seq.num_frames - n_keep
        if n_keep == 0:
            continue
        sub = seq if n_keep == seq.num_frames else _take_frames(seq, mask)
        stats["frames_kept"] += n_keep
        if sub.smpl is None:
            stats["kept_without_smpl"] += n_keep
        else:
            stats["kept_without_smpl"] += int((~sub.smpl.valid).sum())
        kept.append(sub)
    stats["sequences_kept"] = len(kept)

    log.info("frame selection on %s: %d of %d frames kept (stride %d); skipped: %d by stride, "
             "%d in %d excluded sequence(s) %s; %d kept frames have no SMPL fit",
             corpus.source or "corpus", stats["frames_kept"], stats["frames_in"], stride,
             stats["skipped_stride"], stats["skipped_excluded"], len(stats["sequences_excluded"]),
             stats["sequences_excluded"], stats["kept_without_smpl"])
    return PoseCorpus(kept, dict(corpus.cameras), corpus.source), stats
