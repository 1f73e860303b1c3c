"""Build data_3d_h36m.npz and data_2d_h36m_gt.npz from Martinez's ``h36m.zip`` archive.

    cd data && python prepare_data_h36m.py --from-archive h36m.zip       (as the GraphSH README)
    python data/prepare_data_h36m.py --from-archive h36m.zip --output-dir data

The archive holds ``h36m/<S>/MyPoses/3D_positions/<Action>.h5`` with a dataset ``3D_positions``
of shape (96, N): 32 joints x xyz, world millimetres. As VideoPose3D does, each becomes
``positions_3d[S][Action]`` float32 (N, 32, 3) in metres, S11 'Directions' (corrupted video) is
skipped, and the GT 2D file holds the 16 SemGCN/GraphSH joints (``--joints-2d 17`` for the
VideoPose3D variant) projected through the published cameras with lens distortion. Action names
keep the archive's sub-action suffixes; 'TakingPhoto'/'WalkingDog' become 'Photo'/'WalkDog'.

Only the 3D pose files are extracted, one at a time, into a temporary folder that is removed
afterwards; the archive and everything else of the user's stay untouched. Existing outputs are
not overwritten without ``--overwrite``.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

if __package__ in (None, ""):  # run as a script: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from lib.data.errors import DataFormatError, MissingDataFileError, missing_file_error  # noqa: E402
from lib.data.formats.h36m_npz import (FILE_3D, JOINT_SET_2D, file_2d, metadata_2d,  # noqa: E402
                           project_views, save_npz)
from lib.geometry.camera import h36m_cameras  # noqa: E402
from lib.geometry.skeleton import ACTION_ALIASES, canonical_action  # noqa: E402

LOG = logging.getLogger("pose.prepare_data_h36m")

HOW_TO_GET_ARCHIVE = (
    "download the SemGCN/GraphSH mirror of Martinez's archive with `pip install gdown && gdown "
    "https://drive.google.com/uc?id=1Ac-gUXAg-6UiwThJVaw6yw2151Bot3L1` (the original Dropbox "
    "link is dead; the Human3.6M licence asks you to register at vision.imar.ro)")
POSE_MEMBER = re.compile(r"(?:^|/)h36m/(S\d+)/MyPoses/3D_positions/([^/]+)\.h5$")
DATASET = "3D_positions"
SKIPPED_SEQUENCES = (("S11", "Directions"),)   # corrupted video, as VideoPose3D
EXPECTED_FILES_PER_SUBJECT = 30
NUM_JOINTS_RAW = 32


def archive_action_name(name: str) -> str:
    """'TakingPhoto 1' -> 'Photo 1', 'WalkingDog' -> 'WalkDog'; other names unchanged."""
    base, sep, suffix = name.partition(" ")
    canonical_action(name)  # raises on names that are not H36M actions
    return ACTION_ALIASES.get(base, base) + sep + suffix


def read_h5_positions(path: Path, label: str) -> np.ndarray:
    """``3D_positions`` (96, N) mm -> float32 (N, 32, 3) metres; ``label`` names it in errors."""
    try:
        with h5py.File(path, "r") as hf:
            if DATASET not in hf:
                raise DataFormatError(label, DATASET, f"missing dataset (has {list(hf.keys())})")
            data = hf[DATASET][()]   # h5py >= 3 has no Dataset.value
    except OSError as exc:
        raise DataFormatError(label, None, f"not a readable HDF5 file ({exc})") from None
    if data.ndim != 2 or data.shape[0] != NUM_JOINTS_RAW * 3:
        raise DataFormatError(label, DATASET, f"expected shape ({NUM_JOINTS_RAW * 3}, N), "
                                              f"got {data.shape}")
    if not np.isfinite(data).all():
        raise DataFormatError(label, DATASET, "contains NaN/inf")
    return (data.reshape(NUM_JOINTS_RAW, 3, -1).transpose(2, 0, 1) / 1000).astype(np.float32)


def read_archive(archive: Path, progress: bool = True) -> dict:
    """positions_3d {S: {action: (N, 32, 3) float32 m}} from the archive's 3D pose files."""
    archive = Path(archive)
    if not archive.is_file():
        raise missing_file_error(archive, HOW_TO_GET_ARCHIVE)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(archive, None, f"not a readable zip archive ({exc}); the download "
                                             f"is corrupt or incomplete, fetch it again") from None
    positions, skipped = {}, []
    with zf, tempfile.TemporaryDirectory(prefix="h36m_archive_") as workdir:
        members = [(name, m.groups()) for name in zf.namelist()
                   if (m := POSE_MEMBER.search(name))]
        if not members:
            raise DataFormatError(archive, "h36m/<S>/MyPoses/3D_positions/*.h5",
                                  "no 3D pose files in the archive; is it Martinez's h36m.zip?")
        for name, (subject, raw_action) in tqdm(sorted(members), desc="3D poses", unit="file",
                                                disable=not progress):
            label = f"{archive}:{name}"
            try:
                action = archive_action_name(raw_action)
            except ValueError as exc:
                raise DataFormatError(label, raw_action, str(exc)) from None
            if (subject, action) in SKIPPED_SEQUENCES:
                skipped.append((subject, action))
                continue
            try:
                extracted = Path(zf.extract(name, workdir))
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise DataFormatError(label, None, f"cannot extract ({exc}); the archive is "
                                                   f"corrupt, fetch it again") from None
            subject_poses = positions.setdefault(subject, {})
            if action in subject_poses:
                raise DataFormatError(label, action, "two files give the same action name")
            subject_poses[action] = read_h5_positions(extracted, label)
            extracted.unlink()
    for subject, actions in sorted(positions.items()):
        n_skipped = sum(1 for s, _ in skipped if s == subject)
        if len(actions) + n_skipped != EXPECTED_FILES_PER_SUBJECT:
            LOG.warning("%s: %d pose files in the archive, the full dataset has %d", subject,
                        len(actions) + n_skipped, EXPECTED_FILES_PER_SUBJECT)
        LOG.info("%s: %d sequences, %d frames", subject, len(actions),
                 sum(len(a) for a in actions.values()))
    for subject, action in skipped:
        LOG.info("skipped %s '%s' (corrupted video in Human3.6M)", subject, action)
    return positions


def gt_2d(positions_3d: dict, joints_2d: int = 16) -> dict:
    """positions_2d {S: {action: [4 x (N, J, 2) float32 px]}} projected with distortion."""
    positions_2d = {}
    for subject, actions in positions_3d.items():
        cameras = h36m_cameras(int(subject[1:]))
        positions_2d[subject] = {
            action: project_views(pos.astype(np.float64) * 1000, "h36m32", cameras,
                                  JOINT_SET_2D[joints_2d])
            for action, pos in actions.items()}
    return positions_2d


def prepare_from_archive(archive, output_dir, joints_2d: int = 16, overwrite: bool = False,
                         progress: bool = True) -> list:
    """Write data_3d_h36m.npz and data_2d_h36m_gt.npz into ``output_dir``; returns their paths."""
    output_dir = Path(output_dir)
    out_3d, out_2d = output_dir / FILE_3D, output_dir / file_2d("gt")
    existing = [p for p in (out_3d, out_2d) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; pass --overwrite to replace it")
    positions_3d = read_archive(archive, progress=progress)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_npz(out_3d, positions_3d=positions_3d)
    save_npz(out_2d, positions_2d=gt_2d(positions_3d, joints_2d),
             metadata=metadata_2d("gt", JOINT_SET_2D[joints_2d]))
    return [out_3d, out_2d]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from-archive", required=True, type=Path, metavar="h36m.zip",
                        help="Martinez's preprocessed Human3.6M archive")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent,
                        help="where the .npz files go (default: this script's folder, data/)")
    parser.add_argument("--joints-2d", type=int, choices=sorted(JOINT_SET_2D), default=16,
                        help="16 (SemGCN/GraphSH, default) or 17 (VideoPose3D) GT 2D joints")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = prepare_from_archive(args.from_archive, args.output_dir, args.joints_2d,
                                     args.overwrite)
    except (DataFormatError, MissingDataFileError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
