"""Errors shared by every pose-data reader, so that bad input always names the file and the key.

Two kinds of trouble, two exception types:
* :class:`MissingDataFileError` (a ``FileNotFoundError``, and like every project error a
  :class:`lib.errors.PoseError`): the file is not there. The message
  says where it was expected and how to obtain or generate it.
* :class:`DataFormatError` (a ``ValueError``): the file is there but malformed (missing key,
  wrong shape, NaN, unknown subject). The message names the file and the key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from lib.errors import MissingFileError, PoseError

PathLike = Union[str, Path]

# How to get the data when nothing real is at hand: the embedded synthetic stand-in.
HOW_TO_SYNTHESIZE = ("generate the synthetic stand-in with `python data/synthesize.py` "
                     "(it writes every file the real pipeline reads)")


class MissingDataFileError(MissingFileError):
    """A data file is absent; ``path`` is where it was looked for."""

    def __init__(self, path: PathLike, how_to_get: str):
        self.path = Path(path)
        self.how_to_get = how_to_get
        super().__init__(f"missing data file: {self.path}\n  how to get it: {how_to_get}")


class DataFormatError(PoseError, ValueError):
    """A data file is malformed.

    ``DataFormatError(path, key, problem)`` reads "<path>: key '<key>': <problem>".
    A single argument is used as the whole message (for errors that concern no one key).
    """

    def __init__(self, path: PathLike, key: Optional[str] = None, problem: Optional[str] = None):
        self.path = path
        self.key = key
        self.problem = problem
        if key is None and problem is None:
            message = str(path)
        elif key is None:
            message = f"{path}: {problem}"
        else:
            message = f"{path}: key '{key}': {problem}"
        super().__init__(message)


def missing_file_error(path: PathLike, how_to_get: str) -> MissingDataFileError:
    """The exception to raise for an absent file (returned, so the raise stays in the reader)."""
    return MissingDataFileError(path, how_to_get)


def require_file(path: PathLike, how_to_get: str) -> Path:
    """``path`` as a Path if it is an existing file, else raise :func:`missing_file_error`."""
    path = Path(path)
    if not path.is_file():
        raise missing_file_error(path, how_to_get)
    return path

