"""Writing files safely: every temp-then-rename writer of the project goes through here.

:func:`atomic_write` writes to a temporary file beside the target and renames it into place,
so a reader never sees half a file and a crash never leaves a broken target. On any
exception (disk full, Ctrl-C, a bug in the writer) the temporary file is removed; operating-
system failures become a :class:`lib.errors.FileSystemError` that names the path and the
cause in words.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable, Union

from lib.errors import FileSystemError

PathLike = Union[str, Path]

_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied (the folder is read-only for this user)",
    errno.EPERM: "operation not permitted (the folder is read-only for this user)",
    errno.ENOTDIR: "a file is in the way: a parent of the path is a file, not a folder",
    errno.EISDIR: "a folder is in the way: the path is a folder, not a file",
    errno.EEXIST: "a file is in the way: the path exists and is not a folder",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.ENAMETOOLONG: "the file name is too long",
}


def describe_os_error(exc: OSError) -> str:
    """The cause of an OSError in words (falls back to the system's own text)."""
    return _CAUSES.get(exc.errno, exc.strerror or str(exc))


def file_system_error(path: PathLike, exc: OSError, doing: str = "write") -> FileSystemError:
    """A FileSystemError for ``exc`` while doing ``doing`` on ``path`` (returned, for raise)."""
    return FileSystemError(
        f"cannot {doing} '{path}': {describe_os_error(exc)} ({type(exc).__name__}: "
        f"{exc.strerror or exc}). Free space, fix the permissions, move what is in the way, or "
        f"point the run at another folder (output_dir / cache_dir / --out).")


def temp_path(path: PathLike) -> Path:
    """The temporary name :func:`atomic_write` uses for ``path``: hidden, in the same folder
    (so the rename is atomic), unique per process, keeping the suffix (np.savez appends
    '.npz' to names without it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def make_dirs(path: PathLike) -> Path:
    """``mkdir -p`` with a FileSystemError naming the path when it cannot be made."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:          # a file with the folder's name
        raise file_system_error(path, exc, "create the folder") from None
    except OSError as exc:
        raise file_system_error(path, exc, "create the folder") from None
    return path


def atomic_write(path: PathLike, writer: Callable[[Path], object], *, mkdir: bool = True):
    """Call ``writer(tmp)`` to write the content to a temporary file, then rename it to
    ``path``. Returns what ``writer`` returned. The temporary file never outlives a failure;
    an OSError (also one raised inside ``writer``) becomes a FileSystemError naming ``path``.
    """
    path = Path(path)
    if mkdir:
        make_dirs(path.parent)
    tmp = temp_path(path)
    try:
        result = writer(tmp)
        os.replace(tmp, path)
        return result
    except OSError as exc:
        _remove(tmp)
        raise file_system_error(path, exc) from None
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> Path:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return Path(path)


def _remove(tmp: Path):
    try:
        os.unlink(tmp)
    except OSError:
        pass
