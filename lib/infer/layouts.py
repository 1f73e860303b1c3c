"""2D keypoint layouts of common detectors and their mapping to the H36M-17 joints.

Each H36M-17 joint is the mean of one or more source joints; its confidence is the lowest of
theirs (a derived joint is only as good as its weakest input). Rules and provenance:

* joints with a direct counterpart (hips, knees, ankles, shoulders, elbows, wrists) are copied;
* Pelvis = midpoint of the hips, Thorax = midpoint of the shoulders, Torso (spine) = midpoint of
  pelvis and thorax, Nose = the detector's nose, Head = midpoint of the eyes: the COCO -> H36M
  conversion of MMPose's two-stage 3D demo and GAST-Net's ``coco_h36m``;
* OpenPose BODY_25 / COCO-18 carry a Neck joint, but H36M's Thorax sits between the shoulders
  (H36M's joint 8 is the base of the neck, close to OpenPose's Neck): we use the shoulder
  midpoint as for COCO, so that every layout maps the same way, and record this in the table;
* H36M-16 / H36M-17 inputs are taken as they are (H36M-16 has no Nose: it is the midpoint of
  Thorax and Head, which is where Human3.6M puts it within about 2 cm).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from lib.errors import PoseError
from lib.geometry.skeleton import H36M16, H36M17, KEEP_17_TO_16

COCO17_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                "right_ankle")
OPENPOSE_COCO18_NAMES = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
                         "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
                         "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
                         "left_eye", "right_ear", "left_ear")
OPENPOSE_BODY25_NAMES = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
                         "left_shoulder", "left_elbow", "left_wrist", "mid_hip", "right_hip",
                         "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                         "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe",
                         "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
                         "right_heel")

# H36M-17 joint -> the detector joints (by name) whose mean it is.
_DETECTOR_RULES = {
    "Pelvis": ("left_hip", "right_hip"),
    "R_Hip": ("right_hip",), "R_Knee": ("right_knee",), "R_Ankle": ("right_ankle",),
    "L_Hip": ("left_hip",), "L_Knee": ("left_knee",), "L_Ankle": ("left_ankle",),
    "Torso": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
    "Neck": ("left_shoulder", "right_shoulder"),
    "Nose": ("nose",),
    "Head": ("left_eye", "right_eye"),
    "L_Shoulder": ("left_shoulder",), "L_Elbow": ("left_elbow",), "L_Wrist": ("left_wrist",),
    "R_Shoulder": ("right_shoulder",), "R_Elbow": ("right_elbow",), "R_Wrist": ("right_wrist",),
}


class KeypointInputError(PoseError, ValueError):
    """A keypoint file that cannot be used as it is; the message names the file and the fix."""


@dataclass(frozen=True)
class Layout:
    """A source joint order and, per H36M-17 joint, the source indices averaged into it."""
    name: str
    joint_names: Tuple[str, ...]
    rules: Tuple[Tuple[int, ...], ...]      # one tuple of source indices per H36M-17 joint

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def table(self) -> list:
        """(H36M joint, rule) rows for the documentation."""
        rows = []
        for target, src in zip(H36M17.joint_names, self.rules):
            names = [self.joint_names[i] for i in src]
            rows.append((target, names[0] if len(names) == 1 else
                         "mean(" + ", ".join(names) + ")"))
        return rows


def _detector_layout(name, joint_names) -> Layout:
    idx = {n: i for i, n in enumerate(joint_names)}
    return Layout(name, tuple(joint_names),
                  tuple(tuple(idx[n] for n in _DETECTOR_RULES[t]) for t in H36M17.joint_names))


def _h36m16_layout() -> Layout:
    """H36M-16 is H36M-17 without the Nose (KEEP_17_TO_16); the Nose is rebuilt between the
    Thorax and the Head."""
    nose = (H36M16.index("Thorax"), H36M16.index("Head"))
    rules = tuple((KEEP_17_TO_16.index(i),) if i in KEEP_17_TO_16 else nose
                  for i in range(H36M17.num_joints))
    return Layout("h36m16", H36M16.joint_names, rules)


LAYOUTS: Dict[str, Layout] = {
    "coco17": _detector_layout("coco17", COCO17_NAMES),
    "openpose_coco18": _detector_layout("openpose_coco18", OPENPOSE_COCO18_NAMES),
    "openpose_body25": _detector_layout("openpose_body25", OPENPOSE_BODY25_NAMES),
    "h36m17": Layout("h36m17", H36M17.joint_names, tuple((i,) for i in range(17))),
    "h36m16": _h36m16_layout(),
}


def layout_for_count(num_joints: int, hint: str = "") -> Layout:
    """The layout a detector file with ``num_joints`` joints most likely uses."""
    by_count = {17: "coco17", 18: "openpose_coco18", 25: "openpose_body25", 16: "h36m16"}
    if num_joints not in by_count:
        raise KeypointInputError(f"{hint}keypoints with {num_joints} joints match no known layout "
                         f"(COCO-17, OpenPose COCO-18 / BODY_25, H36M-16/17)")
    return LAYOUTS[by_count[num_joints]]


def to_h36m17(xy: np.ndarray, scores: np.ndarray, layout: Layout):
    """(T, J_src, 2) pixels and (T, J_src) scores -> (T, 17, 2), (T, 17) by the layout's rules."""
    out = np.stack([xy[:, list(src)].mean(1) for src in layout.rules], 1)
    conf = np.stack([scores[:, list(src)].min(1) for src in layout.rules], 1)
    return out, conf


def coco17_from_h36m17(kp17: np.ndarray) -> np.ndarray:
    """COCO-17 points made from H36M-17 ones, for tests and benchmarks of the COCO path.

    Limbs are copied, both eyes sit on the H36M head and nose and ears on its Nose joint, so
    :func:`to_h36m17` gives back every joint except the derived Pelvis, Torso and Neck.
    """
    j = {n: kp17[:, i] for i, n in enumerate(H36M17.joint_names)}
    src = {"nose": j["Nose"], "left_eye": j["Head"], "right_eye": j["Head"],
           "left_ear": j["Nose"], "right_ear": j["Nose"]}
    for side, s in (("left", "L"), ("right", "R")):
        for part, h in (("shoulder", "Shoulder"), ("elbow", "Elbow"), ("wrist", "Wrist"),
                        ("hip", "Hip"), ("knee", "Knee"), ("ankle", "Ankle")):
            src[f"{side}_{part}"] = j[f"{s}_{h}"]
    return np.stack([src[n] for n in COCO17_NAMES], 1)
