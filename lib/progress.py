"""Progress bars for every long phase (generation, cache building, training, evaluation).

One place decides how they look and that only the main process draws them: under torchrun
(``RANK`` > 0) or with ``enable=False`` the bar is silent. They write to stderr, so a run's
log.txt and stdout stay clean.
"""
from __future__ import annotations

import os

from tqdm import tqdm


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it",
             enable: bool = True):
    """``tqdm(iterable)`` as every phase of the project shows it; without ``iterable`` a
    function ``(iterable, total=None) -> bar`` (the form ``predict(progress=...)`` takes)."""
    if iterable is None:
        return lambda it, total=None: progress(it, total=total, desc=desc, unit=unit,
                                               enable=enable)
    return tqdm(iterable, total=total, desc=desc, unit=unit, mininterval=1.0, leave=False,
                dynamic_ncols=True, disable=not (enable and is_main_process()))
