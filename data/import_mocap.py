"""Import real motion capture (CMU ASF/AMC, or BVH) as Human3.6M data seen by the H36M cameras.

    python data/import_mocap.py --asf 02.asf --amc 02_01.amc 02_02.amc --out data/CMU \\
        --subject 1 --action Walking --format npz json
    python data/import_mocap.py --bvh 02_01.bvh --bvh-unit cm --out data/CMU --action Walking

BVH joints are matched by name to the CMU skeleton: by default ASF bone names or the usual
CMU-BVH (MotionBuilder-like) names such as Hips, LeftUpLeg, LeftForeArm; ``--joint-map`` takes a
shipped map (``cmu``, ``mixamo``, ``motionbuilder``, in lib/data/mocap/joint_maps/) or your own
JSON/YAML file {file joint name: CMU bone name}. The file's length unit and up axis are
options, and a body that does not come out of human height is an error.

Importing into a folder that already holds data adds to it: the new sequences are merged into
the existing ``.npz`` / JSON files (other subjects and sequences are kept). A sequence that is
already there (same subject, action and sub-action) is an error unless ``--overwrite``, which
replaces it; files this project's tools did not write (real data; see
``pose_data_manifest.json``) are not rewritten without ``--overwrite`` either.

Writes ``data_3d_h36m.npz`` + ``data_2d_h36m_gt.npz`` (``--format npz``, under ``--out``) and/or
the COCO-style ``Human36M/annotations/Human36M_subject{S}_*.json`` (``--format json``). The
clips become sequences of H36M subject ``--subject`` filmed through the published calibration of
``--camera-subject`` (default: the subject's own if it has one, else S1), resampled to 50 fps.
There are no SMPL fits for such data: the JSON ``smpl_param`` file is empty, and readers see
``has_mesh == False``. Which H36M action a clip stands for is the user's choice (``--action``,
one for all clips or one per clip).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

if __package__ in (None, ""):  # run as a script: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from lib.data.corpus import PoseCorpus  # noqa: E402
from lib.data.formats.h36m_json import annotation_path  # noqa: E402
from lib.data.formats.h36m_npz import FILE_3D, action_key, file_2d  # noqa: E402
from lib.data.formats.written import (DataExistsError, record_written,  # noqa: E402
                                      refuse_foreign)
from lib.data.mocap.to_h36m import (H36M_FPS, LENGTH_UNITS_MM, ImportOptions,  # noqa: E402
                                    import_bvh_clips, import_clips, shipped_joint_maps)
from lib.errors import PoseError  # noqa: E402
from lib.geometry.h36m_calibration import EXTRINSICS  # noqa: E402

LOG = logging.getLogger("pose.import_mocap")
DEFAULT_CAMERA_SUBJECT = 1
TOOL = "import_mocap.py"
JSON_KINDS = ("data", "camera", "joint_3d", "smpl_param")


def merge_corpora(existing: PoseCorpus, new: PoseCorpus, where: Path,
                  overwrite: bool = False) -> PoseCorpus:
    """``existing`` plus the sequences of ``new``; a sequence in both is an error unless
    ``overwrite`` (then the new one replaces it). A subject in both must have the same cameras."""
    for subject in sorted(set(existing.cameras) & set(new.cameras)):
        old, cur = existing.cameras[subject], new.cameras[subject]
        same = sorted(old) == sorted(cur) and all(
            np.allclose(old[c].R, cur[c].R) and np.allclose(old[c].t, cur[c].t) for c in old)
        if not same:
            raise DataExistsError(
                f"{where}: subject S{subject} there was filmed through other cameras than this "
                f"import's; import with the same --camera-subject as before, or as another "
                f"--subject")
    keys = {s.key for s in new.sequences}
    clashes = [s for s in existing.sequences if s.key in keys]
    if clashes and not overwrite:
        names = ", ".join(f"S{s.subject} '{action_key(*s.key)}' (action {s.action_idx}, "
                          f"sub-action {s.subaction_idx})" for s in clashes[:3])
        raise DataExistsError(
            f"{where} already holds {names}{', ...' if len(clashes) > 3 else ''}: this import "
            f"would replace {'it' if len(clashes) == 1 else 'them'}. Import as another --subject "
            f"or --action, into another --out, or pass --overwrite to replace "
            f"{'it' if len(clashes) == 1 else 'them'}.")
    kept = [s for s in existing.sequences if s.key not in keys]
    return PoseCorpus(sorted(kept + list(new.sequences), key=lambda q: q.key),
                      {**existing.cameras, **new.cameras}, source=new.source)


def _check_2d_joints(corpus: PoseCorpus, path: Path, joints_2d: int) -> None:
    from lib.geometry.skeleton import SKELETONS
    have = {SKELETONS[s.keypoints_2d_joint_set].num_joints for s in corpus.sequences
            if s.keypoints_2d and s.keypoints_2d_joint_set}
    if have and have != {joints_2d}:
        raise DataExistsError(f"{path} holds {sorted(have)[0]}-joint 2D keypoints; import with "
                              f"--joints-2d {sorted(have)[0]} to add to it, or into another --out")


def write_corpus(corpus, out: Path, formats, joints_2d: int = 16,
                 overwrite: bool = False) -> List[Path]:
    """Write ``corpus`` in each requested format, merged into what ``out`` already holds
    (:func:`merge_corpora`); returns the files written and records them as ours."""
    out = Path(out)
    written: List[Path] = []
    for fmt in formats:
        if fmt == "npz":
            from lib.data.formats.h36m_npz import read_h36m_npz, write_h36m_npz
            targets = [out / FILE_3D, out / file_2d("gt")]
            refuse_foreign(out, targets, TOOL, overwrite)
            merged = corpus
            if targets[0].is_file():
                existing = read_h36m_npz(out, keypoints="gt" if targets[1].is_file() else None)
                _check_2d_joints(existing, targets[1], joints_2d)
                merged = merge_corpora(existing, corpus, targets[0], overwrite)
            paths = write_h36m_npz(merged, out, keypoints="gt", joints_2d=joints_2d)
        elif fmt == "json":
            from lib.data.formats.h36m_json import read_h36m_json, write_h36m_json
            targets = [annotation_path(out, s, k) for s in corpus.subjects for k in JSON_KINDS]
            refuse_foreign(out, targets, TOOL, overwrite)
            there = [s for s in corpus.subjects if annotation_path(out, s, "data").is_file()]
            merged = corpus
            if there:
                existing = read_h36m_json(out, subjects=there)
                merged = merge_corpora(existing, corpus, out / "Human36M" / "annotations",
                                       overwrite)
            paths = write_h36m_json(merged, out, regressor=None)
        else:
            raise ValueError(f"unknown format '{fmt}' (expected npz or json)")
        record_written(out, paths, TOOL)
        written += list(paths)
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--asf", type=Path, help="skeleton file (e.g. cmu/02/02.asf)")
    p.add_argument("--amc", type=Path, nargs="+", help="motion files of that skeleton")
    p.add_argument("--bvh", type=Path, nargs="+", help="BVH files (instead of --asf/--amc)")
    p.add_argument("--bvh-unit", default="cm",
                   help=f"length unit of the BVH files: {', '.join(LENGTH_UNITS_MM)} or mm per "
                        f"unit (default cm)")
    p.add_argument("--bvh-up", choices=("y", "z"), default="y", help="up axis of the BVH files")
    p.add_argument("--joint-map", default=None,
                   help=f"BVH joint names -> CMU bones: a shipped map "
                        f"({', '.join(shipped_joint_maps())}) or a JSON/YAML file (default: ASF "
                        f"bone names and the usual CMU-BVH names)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace sequences that are already in --out, and allow rewriting data "
                        "files this project did not write")
    p.add_argument("--out", required=True, type=Path, help="output root")
    p.add_argument("--subject", type=int, default=1, help="H36M subject id of the sequences")
    p.add_argument("--action", nargs="+", default=["Walking"],
                   help="H36M action name(s): one for all clips or one per clip")
    p.add_argument("--camera-subject", type=int, default=None,
                   help="whose published calibration to film with (default: --subject if it has "
                        "one, else S1)")
    p.add_argument("--joint-set", choices=("h36m17", "h36m32"), default="h36m32",
                   help="3D joint set stored (default h36m32, the public npz layout)")
    p.add_argument("--joints-2d", type=int, choices=(16, 17), default=16,
                   help="joints of the 2D npz (16: SemGCN/GraphSH, 17: VideoPose3D)")
    p.add_argument("--fps", type=float, default=H36M_FPS,
                   help="output frame rate; 0 keeps the capture rate (CMU: 120)")
    p.add_argument("--max-frames", type=int, default=None, help="read only the first frames")
    p.add_argument("--no-center", action="store_true", help="keep the clip's horizontal position")
    p.add_argument("--no-floor", action="store_true", help="keep the clip's vertical position")
    p.add_argument("--format", nargs="+", choices=("npz", "json"), default=["npz", "json"])
    return p


def main(argv: Optional[list] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    asf_amc = bool(args.asf and args.amc) and not args.bvh
    bvh_only = bool(args.bvh) and not (args.asf or args.amc)
    if not (asf_amc or bvh_only):
        parser.error("give either --asf with --amc, or --bvh")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cam_subject = args.camera_subject
    if cam_subject is None:
        cam_subject = args.subject if args.subject in EXTRINSICS and EXTRINSICS[args.subject] \
            else DEFAULT_CAMERA_SUBJECT
    if args.joint_set == "h36m32" and "json" in args.format:
        LOG.info("the JSON layout stores 17 joints; they are taken from the 32")
    options = ImportOptions(joint_set=args.joint_set, fps_out=args.fps or None,
                            camera_subject=cam_subject, center=not args.no_center,
                            on_floor=not args.no_floor, max_frames=args.max_frames)
    actions = args.action[0] if len(args.action) == 1 else args.action
    try:
        if args.bvh:
            corpus = import_bvh_clips(args.bvh, subject=args.subject, actions=actions,
                                      options=options, unit=args.bvh_unit, up=args.bvh_up,
                                      joint_map=args.joint_map)
        else:
            corpus = import_clips(args.asf, args.amc, subject=args.subject, actions=actions,
                                  options=options)
        paths = write_corpus(corpus, args.out, args.format, args.joints_2d, args.overwrite)
    except (PoseError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for seq in corpus.sequences:
        LOG.info("S%d %s %d: %d frames, %s, no mesh target", seq.subject, seq.action_name,
                 seq.subaction_idx, seq.num_frames, seq.joint_set)
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
