"""The one base class of every error a user can fix (bad config, file, checkpoint, argument).

The command-line front ends (lib/engine/run.py ``run_cli``, the data tools) catch
:class:`PoseError` and print its message as one paragraph with exit code 2; anything else is
a bug and keeps its traceback. Every project error type derives from it: ConfigError
(lib/config.py), CheckpointError (lib/experiment.py), DataFormatError / MissingDataFileError
(lib/data/errors.py), KeypointInputError (lib/infer/layouts.py), SynthesisError
(lib/data/synthetic/generate.py), DeviceError, TrainingDiverged, ... and
:class:`FileSystemError` below.
"""
from __future__ import annotations


class PoseError(Exception):
    """An error whose message tells the user what to change; never a bug."""


class FileSystemError(PoseError):
    """Writing or reading a path failed for a reason outside the program (a file where a
    folder should be, a read-only or full disk, missing permission)."""


class RunInterrupted(PoseError):
    """A run stopped by Ctrl-C after it saved what it had (exit code 130, not 2)."""

    exit_code = 130


class MissingFileError(PoseError, FileNotFoundError):
    """A file the user must provide is absent; the message says where and how to get it."""

    def __str__(self):  # FileNotFoundError would otherwise print its args tuple
        return self.args[0] if self.args else ""
