"""infer.py --video: the whole sequence of one track as a video, 2D input beside the 3D pose.

Frames are drawn like the --vis pictures (:class:`lib.vis.skeleton_plot.InputPoseFigure`,
one figure whose artists are updated per frame). The video is an H.264 MP4 written by imageio
through the ffmpeg binary of the imageio-ffmpeg wheel; where no ffmpeg can be found (the wheel
is missing, or IMAGEIO_FFMPEG_EXE names no program) an animated GIF is written with Pillow
instead. Either is written to a temporary name and renamed.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Optional

import numpy as np

from lib.fileio import atomic_write
from lib.geometry.skeleton import skeleton_for_joints
from lib.infer.layouts import KeypointInputError
from lib.infer.pipeline import to_model_joints
from lib.progress import progress as bar

DEFAULT_FPS = 25.0          # --fps of inputs whose format has no frame rate
MAX_FPS = 1000.0

log = logging.getLogger("pose")


def check_fps(fps) -> float:
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0 or fps > MAX_FPS:
        raise KeypointInputError(f"--fps {fps:g} is not a frame rate: pass a positive number of "
                                 f"frames per second up to {MAX_FPS:g}, e.g. --fps 30")
    return fps


def find_ffmpeg() -> Optional[str]:
    """The ffmpeg program imageio would use, or None where there is none."""
    try:
        import imageio_ffmpeg
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
    return shutil.which(exe)


def track_rows(track, person: int) -> np.ndarray:
    """Rows of track ``person`` in frame order."""
    rows = np.nonzero(track.person_ids == person)[0]
    if not len(rows):
        ids = np.unique(track.person_ids)
        have = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
        raise KeypointInputError(f"{track.source}: --video-track {person} has no rows (the "
                                 f"input's tracks are {have}). Pass one of them.")
    return rows[np.argsort(track.frame_ids[rows], kind="stable")]


def render_frames(track, prepared, poses: np.ndarray, sizes: np.ndarray, rows: np.ndarray,
                  min_score: float, progress: bool = True):
    """Yield (H, W, 3) uint8 frames of ``rows``. A row that was not lifted shows its confident
    2D joints and no 3D pose."""
    from lib.infer.pictures import row_title
    from lib.vis.skeleton_plot import InputPoseFigure
    num_joints = poses.shape[1]
    xy = to_model_joints(prepared.xy[rows], num_joints).astype(np.float64)
    conf = to_model_joints(prepared.scores[rows][..., None], num_joints)[..., 0]
    valid = prepared.valid[rows]
    xy[~valid[:, None] & (conf < min_score)] = np.nan
    fig = InputPoseFigure(skeleton_for_joints(num_joints), sizes[rows[0]])
    try:
        for k in bar(range(len(rows)), total=len(rows), desc="video", unit="frame",
                     enable=progress and len(rows) >= 50):
            r = rows[k]
            note = "" if valid[k] else " (not lifted)"
            fig.update(xy[k], sizes[r], poses[r], row_title(track, r) + note)
            yield fig.rgb()
    finally:
        fig.close()


def _write_mp4(tmp: Path, frames, fps: float):
    import imageio.v2 as imageio
    with imageio.get_writer(str(tmp), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                            quality=7, ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(frame)


def _write_gif(tmp: Path, frames, fps: float):
    from PIL import Image
    frames = iter(frames)
    first = next(frames)
    Image.fromarray(first).save(tmp, format="GIF", save_all=True, loop=0,
                                duration=round(1000.0 / fps),
                                append_images=(Image.fromarray(f) for f in frames))


def write_video(out_dir: Path, frames, fps: float) -> Path:
    """DIR/video.mp4, or DIR/video.gif where no ffmpeg is available; returns the path."""
    if find_ffmpeg():
        path = Path(out_dir) / "video.mp4"
        atomic_write(path, lambda tmp: _write_mp4(tmp, frames, fps))
    else:
        path = Path(out_dir) / "video.gif"
        log.warning("no ffmpeg program found (the imageio-ffmpeg wheel provides one; "
                    "IMAGEIO_FFMPEG_EXE may name another): writing an animated GIF instead")
        atomic_write(path, lambda tmp: _write_gif(tmp, frames, fps))
    return path
