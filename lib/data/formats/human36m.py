"""The Human3.6M facts both of its file layouts share, as one :class:`DatasetInfo` builder."""
from __future__ import annotations

from lib.data.formats import DatasetInfo
from lib.geometry.skeleton import ACTION_NAME, ALL_SUBJECTS, CORRUPTED_SEQUENCES, H36M_FPS


def human36m_info(name: str, joint_set: str, keypoints: tuple,
                  distort_by_default: bool) -> DatasetInfo:
    return DatasetInfo(
        name=name, subjects=tuple(ALL_SUBJECTS), actions=dict(ACTION_NAME), fps=H36M_FPS,
        joint_set=joint_set, keypoints=tuple(keypoints),
        excluded_sequences=tuple(CORRUPTED_SEQUENCES),
        excluded_reason="corrupted S9 sequences (drifting 3D, as the HGN and Pose2Mesh loaders "
                        "skip them)",
        distort_by_default=distort_by_default)
