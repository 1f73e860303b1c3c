"""Dataset formats as plug-ins: each names its files, reads them, and states its own facts.

A format is a :class:`DatasetFormat` registered under the name a YAML gives in
``DATASET.format``. The engine never branches on a format's name: the cache is keyed by
``source_files``, the corpus comes from ``read``, and the split exclusions, the metrics table
and the protocol card come from ``info`` (a :class:`DatasetInfo`). Adding a format is one module
in this package that subclasses DatasetFormat under :func:`register_format` (found on the
first look-up, nothing to list), plus a YAML naming it.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple



@dataclass(frozen=True)
class DatasetInfo:
    """What the engine needs to know about a dataset, instead of Human3.6M constants.

    ``actions`` maps action ids to display names in reporting order; ``None`` means the
    dataset has no action labels, and results are tabulated per sequence instead.
    ``excluded_sequences`` are (subject, action, subaction) keys that DATASET.exclude_corrupted
    leaves out of the test split.
    """
    name: str
    subjects: Tuple[int, ...]
    actions: Optional[Mapping[int, str]]
    fps: float
    joint_set: str                                   # of the 3D joints on disk
    keypoints: Tuple[str, ...] = ("gt",)             # valid DATASET.keypoints values
    excluded_sequences: Tuple[tuple, ...] = ()
    excluded_reason: str = ""
    cameras: str = "per subject"                     # how calibration is keyed
    distort_by_default: bool = False                 # GT 2D projected with lens distortion


class DatasetFormat:
    """Base class of a format plug-in; subclasses set ``name`` and implement the three methods."""

    name: str = ""

    def info(self, cfg) -> DatasetInfo:
        raise NotImplementedError

    def source_files(self, cfg, subjects) -> list:
        """The files the corpus of ``subjects`` is read from (they key the dataset cache)."""
        raise NotImplementedError

    def read(self, cfg, subjects):
        """A :class:`lib.data.corpus.PoseCorpus` of ``subjects``."""
        raise NotImplementedError


FORMATS: Dict[str, DatasetFormat] = {}


def register_format(fmt_cls):
    """Class decorator: register one instance of a DatasetFormat subclass under its name."""
    inst = fmt_cls()
    if not inst.name:
        raise ValueError(f"{fmt_cls.__name__} has no format name")
    FORMATS[inst.name] = inst
    return fmt_cls


_LOADED = False


def _load_builtin_formats():
    """Import every module of this package once, on first look-up, so a new format file
    registers itself without being listed anywhere (and importing this package stays cheap)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def get_format(name: str) -> DatasetFormat:
    _load_builtin_formats()
    if name not in FORMATS:
        from lib.config import ConfigError
        raise ConfigError(f"unknown dataset format '{name}' in DATASET.format; registered: "
                          f"{', '.join(sorted(FORMATS))}")
    return FORMATS[name]
