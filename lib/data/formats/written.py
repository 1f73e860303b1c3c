"""Which data files under a folder this project wrote, so that the tools replace only those.

``data/convert.py`` and ``data/import_mocap.py`` record every file they write in
``<root>/pose_data_manifest.json`` (path relative to the root, size and modification time). A
file that is listed and unchanged since (same size and mtime) may be replaced; any other
existing file (real data, a user's edit, another tool's output) is replaced only when the user
says so (``--overwrite``); otherwise the tool refuses and says why.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, List

from lib.errors import PoseError
from lib.fileio import atomic_write_text

MANIFEST = "pose_data_manifest.json"


class DataExistsError(PoseError, FileExistsError):
    """An output file exists and this project did not write it (or it was changed since)."""


def _manifest_path(root) -> Path:
    return Path(root) / MANIFEST


def _read(root) -> dict:
    path = _manifest_path(root)
    if not path.is_file():
        return {}
    try:
        files = json.loads(path.read_text()).get("files", {})
    except (json.JSONDecodeError, AttributeError, OSError):
        return {}
    return files if isinstance(files, dict) else {}


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def written_here(root, path) -> bool:
    """True when ``path`` (under ``root``) is listed in the manifest and unchanged since."""
    path = Path(path)
    try:
        rel = str(path.resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return False
    entry = _read(root).get(rel)
    return bool(entry) and path.is_file() and _stamp(path) == {
        "bytes": entry.get("bytes"), "mtime_ns": entry.get("mtime_ns")}


def foreign_files(root, paths: Iterable) -> List[Path]:
    """The existing files among ``paths`` that this project did not write (or that changed)."""
    return [Path(p) for p in paths if Path(p).exists() and not written_here(root, p)]


def refuse_foreign(root, paths: Iterable, tool: str, overwrite: bool = False) -> None:
    """Raise DataExistsError if any of ``paths`` exists and is not ours, unless ``overwrite``."""
    if overwrite:
        return
    foreign = foreign_files(root, paths)
    if foreign:
        names = ", ".join(str(p) for p in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise DataExistsError(
            f"{tool}: {names} already exist(s) and {'was' if len(foreign) == 1 else 'were'} not "
            f"written by this project's data tools (no unchanged entry in "
            f"{_manifest_path(root)}), so {'it is' if len(foreign) == 1 else 'they are'} not "
            f"replaced. Write into another folder, move the file(s) away, or pass --overwrite "
            f"to replace them.")


def record_written(root, paths: Iterable, tool: str) -> Path:
    """Add (or refresh) ``paths`` in the manifest under ``root``; returns the manifest path."""
    root = Path(root)
    files = _read(root)
    for p in paths:
        p = Path(p)
        rel = str(p.resolve().relative_to(root.resolve()))
        files[rel] = {**_stamp(p), "tool": tool}
    path = _manifest_path(root)
    atomic_write_text(path, json.dumps({"written_by": "the pose project's data tools",
                                        "files": dict(sorted(files.items()))}, indent=1) + "\n")
    return path
