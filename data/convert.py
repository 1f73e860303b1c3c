"""Convert Human3.6M between the COCO-style JSON layout (HGN) and the .npz layout (GraphSH).

    python data/convert.py json2npz --src data/Synthetic --dst /tmp/x [--keypoints gt]
                                    [--joints-2d 16]
    python data/convert.py npz2json --src /tmp/x --dst /tmp/y [--regressor J_regressor.npy]

``--src``/``--dst`` of the JSON side is the root that holds ``Human36M/annotations/``; of the
npz side, the folder that holds ``data_3d_h36m.npz``. JSON -> npz -> JSON is exact: the npz
writer stores our extra keys (world mm, frame indices, SMPL, cameras; see
lib/data/formats/h36m_npz.py). The JSON has no 2D keypoints, so the npz 2D file holds the joints
projected through the cameras; npz -> JSON drops 2D keypoints, and needs 17 or 32 3D joints.
Sequence names follow Human3.6M's own table (lib/data/formats/h36m_sequences.csv), and the 3D
npz holds the real file's 32 joints.

Existing output files are replaced only if this project's data tools wrote them (listed,
unchanged, in ``<dst>/pose_data_manifest.json``, which every conversion updates); anything else
(real data, a file edited since) is refused unless ``--overwrite``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Union

if __package__ in (None, ""):  # run as a script: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from lib.data.errors import MissingDataFileError  # noqa: E402
from lib.data.formats.h36m_npz import FILE_3D, file_2d, read_h36m_npz, write_h36m_npz  # noqa: E402
from lib.data.formats.h36m_json import (REGRESSOR_FILE, annotation_path,  # noqa: E402
                                        read_h36m_json, read_h36m_regressor, write_h36m_json)
from lib.data.formats.written import record_written, refuse_foreign  # noqa: E402
from lib.errors import PoseError  # noqa: E402

LOG = logging.getLogger("pose.convert")


JSON_KINDS = ("data", "camera", "joint_3d", "smpl_param")


def json_to_npz(json_root, npz_root, keypoints: str = "gt", joints_2d: int = 16,
                subjects=None, overwrite: bool = False) -> List[Path]:
    """COCO-style JSON under ``json_root`` -> data_3d_h36m.npz + data_2d_h36m_<keypoints>.npz.

    Refuses (DataExistsError) to replace outputs this project did not write, unless
    ``overwrite``.
    """
    npz_root = Path(npz_root)
    tool = "convert.py json2npz"
    refuse_foreign(npz_root, [npz_root / FILE_3D, npz_root / file_2d(keypoints)], tool, overwrite)
    corpus = read_h36m_json(json_root, subjects=subjects)
    written = write_h36m_npz(corpus, npz_root, keypoints=keypoints, joints_2d=joints_2d)
    record_written(npz_root, written, tool)
    return written


def npz_to_json(npz_root, json_root, regressor: Union[None, np.ndarray, str, Path] = None,
                subjects=None, overwrite: bool = False) -> List[Path]:
    """data_3d_h36m.npz under ``npz_root`` -> the four JSON files per subject under ``json_root``.

    ``regressor``: an array (17, V), a path to a .npy, or None (no regressor written).
    """
    if regressor is not None and not isinstance(regressor, np.ndarray):
        path = Path(regressor)
        if path.is_dir():   # a JSON root: take the regressor that lives there
            regressor = read_h36m_regressor(path)
        else:
            if not path.is_file():
                raise MissingDataFileError(path, "pass the path of J_regressor_h36m_correct.npy")
            regressor = np.load(path, allow_pickle=False)
    corpus = read_h36m_npz(npz_root, keypoints=None, subjects=subjects)
    json_root, tool = Path(json_root), "convert.py npz2json"
    targets = [annotation_path(json_root, s, kind) for s in corpus.subjects for kind in JSON_KINDS]
    if regressor is not None:
        targets.append(json_root / REGRESSOR_FILE)
    refuse_foreign(json_root, targets, tool, overwrite)
    written = write_h36m_json(corpus, json_root, regressor=regressor)
    record_written(json_root, written, tool)
    return written


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    to_npz = sub.add_parser("json2npz", help="COCO-style JSON -> VideoPose3D .npz")
    to_npz.add_argument("--keypoints", default="gt", help="name of the 2D file (default gt)")
    to_npz.add_argument("--joints-2d", type=int, choices=(16, 17), default=16)
    to_json = sub.add_parser("npz2json", help="VideoPose3D .npz -> COCO-style JSON")
    to_json.add_argument("--regressor", type=Path, default=None,
                         help="J_regressor_h36m_correct.npy to copy next to the annotations")
    for p in (to_npz, to_json):
        p.add_argument("--src", required=True, type=Path)
        p.add_argument("--dst", required=True, type=Path)
        p.add_argument("--subjects", type=int, nargs="*", default=None)
        p.add_argument("--overwrite", action="store_true",
                       help="replace existing output files even if this project did not write "
                            "them (by default only its own, unchanged outputs are replaced)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "json2npz":
            paths = json_to_npz(args.src, args.dst, args.keypoints, args.joints_2d, args.subjects,
                                overwrite=args.overwrite)
        else:
            paths = npz_to_json(args.src, args.dst, args.regressor, args.subjects,
                                overwrite=args.overwrite)
    except (PoseError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
