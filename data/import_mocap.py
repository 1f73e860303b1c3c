"""Import real motion capture (CMU ASF/AMC, or BVH) as Human3.6M data seen by the H36M cameras.

    python data/import_mocap.py --asf 02.asf --amc 02_01.amc 02_02.amc --out data/CMU \\
        --subject 1 --action Walking --format npz json
    python data/import_mocap.py --bvh 02_01.bvh --bvh-unit cm --out data/CMU --action Walking

BVH joints are matched by name to the CMU skeleton (ASF bone names, or the usual CMU-BVH names
such as Hips, LeftUpLeg, LeftForeArm); the file's length unit and up axis are options, and a
body that does not come out of human height is an error.

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

from lib.data.mocap.asf_amc import MocapFormatError  # noqa: E402
from lib.data.mocap.to_h36m import (H36M_FPS, LENGTH_UNITS_MM, ImportOptions,  # noqa: E402
                                import_bvh_clips, import_clips)
from lib.geometry.h36m_calibration import EXTRINSICS  # noqa: E402

LOG = logging.getLogger("pose.import_mocap")
DEFAULT_CAMERA_SUBJECT = 1


def write_corpus(corpus, out: Path, formats, joints_2d: int = 16) -> List[Path]:
    """Write ``corpus`` in each requested format; returns the files written."""
    written: List[Path] = []
    for fmt in formats:
        if fmt == "npz":
            from lib.data.formats.h36m_npz import write_h36m_npz
            written += list(write_h36m_npz(corpus, out, keypoints="gt", joints_2d=joints_2d))
        elif fmt == "json":
            from lib.data.formats.h36m_json import write_h36m_json
            written += list(write_h36m_json(corpus, out, regressor=None))
        else:
            raise ValueError(f"unknown format '{fmt}' (expected npz or json)")
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
                                      options=options, unit=args.bvh_unit, up=args.bvh_up)
        else:
            corpus = import_clips(args.asf, args.amc, subject=args.subject, actions=actions,
                                  options=options)
        paths = write_corpus(corpus, args.out, args.format, args.joints_2d)
    except (MocapFormatError, FileNotFoundError, ValueError) as exc:
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
